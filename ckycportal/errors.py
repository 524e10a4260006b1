"""The portal's one error vocabulary: every refusal a service makes is a ``PortalError``.

Its ``message`` is written for the person who asked (it is shown on the page as it is), names what to fix,
and never holds personal data. Views turn any of them into a message in one place
(``ckycportal.views.refusal_message``); anything else that escapes a service is a bug, not a refusal.

Each app declares its own subclasses next to the services that raise them, e.g. ``RecordInvalid`` (with
its ``problems``), ``RecordConflict`` and ``TransitionNotAllowed`` in records, ``BatchConflict`` in
uploads, ``FileRefused``, ``ImportRejected`` and ``ImportConflict`` in bulkdata, ``AdminActionRefused`` in
institutions, ``PinSourceError`` in codelists. A service raises plain
``ActionRefused`` when no caller needs to tell its refusal apart. Not in this vocabulary: Django's
``PermissionDenied`` (a role refused, a 403 when not caught), and ``ValidationError`` where a service fills
a form's field errors. ``ValueError`` stays a programming error or bad internal input.
"""

from __future__ import annotations


class PortalError(Exception):
    """A refusal the user can act on; ``message`` says what happened and what to do."""

    default_message = "That could not be done."

    def __init__(self, message: str = "") -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ActionRefused(PortalError):
    """The action is not allowed here: wrong state, wrong role, or a rule of the portal."""
