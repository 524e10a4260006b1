from __future__ import annotations

from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Fieldset, Layout, Submit
from django import forms

from .models import Institution


class InstitutionForm(forms.ModelForm):
    """The institution's CERSAI codes and KwikID connection. The token is write-only: blank keeps it."""

    api_base_url = forms.URLField(label="KwikID base URL", max_length=300, assume_scheme="https")
    new_token = forms.CharField(
        label="Replace KwikID bearer token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave blank to keep the current token. The token is never shown again once saved.",
    )

    class Meta:
        model = Institution
        fields = (
            "name",
            "fi_code",
            "region_code",
            "cersai_username",
            "api_version",
            "api_base_url",
            "max_records_per_request",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Fieldset("Institution", "name", "fi_code", "region_code", "cersai_username"),
            Fieldset("KwikID", "api_base_url", "api_version", "max_records_per_request", "new_token"),
            Submit("save", "Save settings"),
        )
