from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Fieldset, Layout, Submit
from django import forms

from .models import Institution

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


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
            "max_request_bytes",
            "kwikid_ignores_repeated_ref_no",
        )

    def clean_api_base_url(self) -> str:
        url = str(self.cleaned_data["api_base_url"])
        host = urlsplit(url).hostname or ""
        # The bearer token travels with every request: plain HTTP only to a stand-in on this machine.
        if urlsplit(url).scheme != "https" and host not in LOOPBACK_HOSTS:
            raise forms.ValidationError(
                "Use an https:// address: the KwikID token must not travel unencrypted."
            )
        return url

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.layout = Layout(
            Fieldset("Institution", "name", "fi_code", "region_code", "cersai_username"),
            Fieldset(
                "KwikID",
                "api_base_url",
                "api_version",
                "max_records_per_request",
                "max_request_bytes",
                "kwikid_ignores_repeated_ref_no",
                "new_token",
            ),
            Submit("save", "Save settings"),
        )
