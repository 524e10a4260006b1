"""CERSAI code lists and the PIN master, as admin-editable tables.

Each list is its own table (one admin page per list); entries are never deleted, only deactivated,
because records may hold the code. The portal reads them through ``selectors.code_book()``, which is
rebuilt whenever ``CodeBookStamp`` changes (every write here changes it, in the writing transaction).
"""

from __future__ import annotations

import uuid

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

CODE_VALIDATOR = RegexValidator(r"^[A-Z0-9]+$", "Use capital letters and digits only, as CERSAI does.")


class CodeEntry(models.Model):
    """One code of a list: what is stored and sent (code), what staff see (label), whether it is in use."""

    # Set on each concrete list: the name codelists.codes uses for it, and the longest code it takes (the
    # record field's own max_length).
    list_name: str = ""
    max_code_length: int = 2

    code = models.CharField(max_length=6, unique=True, validators=[CODE_VALIDATOR])
    label = models.CharField(max_length=120)
    is_active = models.BooleanField(
        "active", default=True, help_text="Inactive codes are not offered for new entries and are refused."
    )
    sort_order = models.PositiveIntegerField(default=0, help_text="Lower numbers come first in lists.")
    note = models.TextField(blank=True, help_text="Where the code comes from, or why it changed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["sort_order", "label"]

    def __str__(self) -> str:
        return f"{self.code} {self.label}"

    def clean(self) -> None:
        super().clean()
        if len(self.code) > self.max_code_length:
            raise ValidationError(
                {"code": f"A {self._meta.verbose_name} code has at most {self.max_code_length} characters."}
            )


class NameTitle(CodeEntry):
    max_code_length = 5
    list_name = "name_titles"

    class Meta(CodeEntry.Meta):
        verbose_name = "name title"


class RelationFlag(CodeEntry):
    max_code_length = 6
    list_name = "relation_flags"

    class Meta(CodeEntry.Meta):
        verbose_name = "relation flag"


class Gender(CodeEntry):
    max_code_length = 1
    list_name = "genders"

    class Meta(CodeEntry.Meta):
        verbose_name = "gender"


class PoaDocument(CodeEntry):
    list_name = "poa_documents"

    class Meta(CodeEntry.Meta):
        verbose_name = "proof-of-address document type"


class DocumentSubmittedType(CodeEntry):
    list_name = "document_submitted_types"

    class Meta(CodeEntry.Meta):
        verbose_name = "type of document submitted"
        verbose_name_plural = "types of document submitted"


class KycType(CodeEntry):
    list_name = "kyc_types"

    class Meta(CodeEntry.Meta):
        verbose_name = "KYC type"


class ImpairmentType(CodeEntry):
    list_name = "impairment_types"

    class Meta(CodeEntry.Meta):
        verbose_name = "impairment type"


class State(CodeEntry):
    max_code_length = 3
    list_name = "states"

    # The state's name in the PIN master's source (India Post), e.g. "CHHATTISGARH": PINs are linked to
    # state codes through it, so a code replaced here (CT -> CG) carries its PINs along.
    pin_master_name = models.CharField(
        "name in the PIN master",
        max_length=80,
        blank=True,
        help_text="The state's name as the PIN master spells it, in capitals.",
    )

    class Meta(CodeEntry.Meta):
        verbose_name = "state"


class Country(CodeEntry):
    list_name = "countries"

    class Meta(CodeEntry.Meta):
        verbose_name = "country"
        verbose_name_plural = "countries"


# Every list table, in the order the admin index shows them.
CODE_LIST_MODELS: tuple[type[CodeEntry], ...] = (
    NameTitle,
    RelationFlag,
    Gender,
    PoaDocument,
    DocumentSubmittedType,
    KycType,
    ImpairmentType,
    State,
    Country,
)


class PinCode(models.Model):
    """One PIN in one state: PIN -> district and state, from the PIN master (``refresh_pin_master``).

    A PIN that straddles a state boundary has one row per state. ``state_name`` is the source's spelling;
    ``State.pin_master_name`` turns it into a CERSAI state code.
    """

    pin = models.CharField("PIN code", max_length=6, db_index=True)
    state_name = models.CharField(max_length=80, blank=True)
    district = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["pin", "state_name"]
        verbose_name = "PIN code"
        constraints = [models.UniqueConstraint(fields=["pin", "state_name"], name="pincode_pin_state_unique")]

    def __str__(self) -> str:
        return f"{self.pin} {self.district}, {self.state_name}".strip(", ")


class CodeBookStamp(models.Model):
    """One row whose token changes with every write to a list or the PIN master.

    Processes keep their code book in memory and rebuild it when the token differs; the token lives in
    the database (not a cache) so it commits and rolls back with the change itself.
    """

    token = models.UUIDField(default=uuid.uuid4)
    changed_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"code book {self.token}"
