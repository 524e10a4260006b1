"""Forms of the API client pages. The services check again and own every rule; these only collect input."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Submit
from django import forms
from django.core.exceptions import ValidationError

from institutions.models import Branch, Institution

from .clients import NAME_VALIDATOR, expiry_end_of

# The services' field names -> these forms' field names.
SERVICE_FIELDS = {"branch_codes": "branches", "expires_at": "expires_on"}


def _branch_field(institution: Institution) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        queryset=Branch.objects.filter(institution=institution, is_active=True).order_by("code"),
        widget=forms.CheckboxSelectMultiple,
        help_text="The client sends and reads records of these branches only.",
    )


def _expiry_field() -> forms.DateField:
    return forms.DateField(
        label="Token expires on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The token works through this day. Leave blank for no expiry.",
    )


def _webhook_field() -> forms.CharField:
    return forms.CharField(
        label="Callback URL",
        required=False,
        max_length=300,
        help_text="Optional. An https:// address that receives each status change, signed with a secret.",
    )


class _ClientForm(forms.Form):
    submit_label = "Save"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("save", self.submit_label))

    def expires_at(self) -> dt.datetime | None:
        day = self.cleaned_data.get("expires_on")
        return expiry_end_of(day) if day else None

    def branch_codes(self) -> list[str]:
        return [branch.code for branch in self.cleaned_data["branches"]]

    def add_service_errors(self, exc: ValidationError) -> None:
        """Put a service's refusal on the fields it names."""
        for field, problems in exc.message_dict.items():
            name = SERVICE_FIELDS.get(field, field)
            self.add_error(name if name in self.fields else None, problems)


class ApiClientCreateForm(_ClientForm):
    name = forms.CharField(
        max_length=60,
        validators=[NAME_VALIDATOR],
        help_text="The calling system, e.g. core-banking. It acts as the maker api-NAME.",
    )
    submit_on_arrival = forms.BooleanField(
        label="Send records straight to review",
        required=False,
        help_text="Off: records arrive as drafts for a maker to submit. Checkers always decide.",
    )
    webhook_url = _webhook_field()
    submit_label = "Create client"

    def __init__(self, *args: Any, institution: Institution, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["branches"] = _branch_field(institution)
        self.fields["expires_on"] = _expiry_field()
        self.order_fields(["name", "branches", "submit_on_arrival", "expires_on", "webhook_url"])


class ApiClientEditForm(_ClientForm):
    submit_on_arrival = forms.BooleanField(
        label="Send records straight to review",
        required=False,
        help_text="Off: records arrive as drafts for a maker to submit. Checkers always decide.",
    )
    webhook_url = _webhook_field()
    rate_limit_per_minute = forms.IntegerField(label="Requests a minute", min_value=1, max_value=100_000)
    submit_label = "Save client"

    def __init__(self, *args: Any, institution: Institution, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["branches"] = _branch_field(institution)
        self.fields["expires_on"] = _expiry_field()
        self.order_fields(
            ["branches", "submit_on_arrival", "expires_on", "webhook_url", "rate_limit_per_minute"]
        )


class TokenRotateForm(forms.Form):
    expires_on = _expiry_field()

    def expires_at(self) -> dt.datetime | None:
        day = self.cleaned_data.get("expires_on")
        return expiry_end_of(day) if day else None
