from __future__ import annotations

from urllib.parse import urlencode

from django import template

from reports.audit import audit_action_label

register = template.Library()


@register.filter
def urlencode_dict(values: dict[str, str]) -> str:
    """``{"a": "1"}`` -> ``a=1``: a page's filters, carried into its paging and export links."""
    return urlencode(values)


@register.filter
def audit_action(action: str) -> str:
    """An audit event's action in words ('user_created' -> 'User created')."""
    return audit_action_label(str(action))
