from __future__ import annotations

from urllib.parse import urlencode

from django import template

register = template.Library()


@register.filter
def urlencode_dict(values: dict[str, str]) -> str:
    """``{"a": "1"}`` -> ``a=1``: a page's filters, carried into its paging and export links."""
    return urlencode(values)
