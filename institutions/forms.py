from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from crispy_forms.helper import FormHelper
from crispy_forms.layout import Fieldset, Layout, Submit
from django import forms
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError

from .models import CODE_VALIDATOR, Branch, Institution, Role, User
from .services import check_role_branches

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class InstitutionForm(forms.ModelForm):
    """The institution's CERSAI codes and KwikID connection. The token is write-only: blank keeps it.

    New CERSAI codes, KwikID base URL, API version or token wait for a second administrator
    (uploads.institution.institution_settings_save); the rest saves at once."""

    api_base_url = forms.URLField(label="KwikID base URL", max_length=300, assume_scheme="https")
    new_token = forms.CharField(
        label="Replace KwikID bearer token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave blank to keep the current token; a new base URL needs it entered again. "
        "The token is never shown again once saved.",
    )
    reason = forms.CharField(
        label="Reason for the change",
        max_length=300,
        required=False,
        help_text="Needed when the KwikID base URL, API version or token or a CERSAI code changes: the "
        "approving administrator reads it, and the audit log keeps it. No customer data.",
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
            "send_guide_extra_fields",
            "upload_due_days",
            "update_due_days",
            "warnings_block",
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
                "send_guide_extra_fields",
                "new_token",
            ),
            Fieldset("Compliance", "upload_due_days", "update_due_days", "warnings_block"),
            "reason",
            Submit("save", "Save settings"),
        )


# --- Branches and users (the admin pages); the services validate again and audit. ---------------------


class _CrispyForm(forms.Form):
    submit_label = "Save"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.helper = FormHelper()
        self.helper.add_input(Submit("save", self.submit_label))


class BranchForm(_CrispyForm):
    code = forms.CharField(
        label="CERSAI branch code",
        max_length=20,
        validators=[CODE_VALIDATOR],
        help_text="Cannot be changed later: upload batches carry it.",
    )
    name = forms.CharField(max_length=150)
    reason = forms.CharField(
        max_length=300,
        help_text="Why the branch is opened (a circular, a ticket). Kept in the audit log. No customer data.",
    )
    submit_label = "Save branch"

    def __init__(self, *args: Any, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["code"].disabled = True
            self.fields["code"].required = False
            del self.fields["reason"]  # a rename needs none: it is audited old -> new


class ReasonForm(_CrispyForm):
    reason = forms.CharField(
        max_length=300, widget=forms.TextInput(), help_text="Kept in the audit log. No customer data."
    )
    submit_label = "Confirm"


def _branch_field(institution: Institution) -> forms.ModelMultipleChoiceField:
    return forms.ModelMultipleChoiceField(
        queryset=Branch.objects.filter(institution=institution, is_active=True).order_by("code"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Makers and checkers: at least one. Administrators and auditors see every branch: none.",
    )


class _UserFields(_CrispyForm):
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False, help_text="Where the portal's notifications are sent.")
    role = forms.ChoiceField(choices=Role.choices)

    def __init__(self, *args: Any, institution: Institution, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["branches"] = _branch_field(institution)

    def clean(self) -> dict[str, Any]:
        # The service checks again; checking here too shows every problem on the first submit.
        data = super().clean() or {}
        if data.get("role"):
            try:
                check_role_branches(data["role"], list(data.get("branches") or []))
            except ValidationError as exc:
                for field, problems in exc.message_dict.items():
                    self.add_error(field if field in self.fields else None, problems)
        return data


class _NewPassword(forms.Form):
    password1 = forms.CharField(
        label="Password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 12 characters. Tell the user by a separate channel; they can change it later.",
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_password2(self) -> str:
        first, second = self.cleaned_data.get("password1"), self.cleaned_data.get("password2", "")
        if first and first != second:
            raise forms.ValidationError("The two passwords differ.")
        return str(second)


class UserCreateForm(_UserFields, _NewPassword):
    username = forms.CharField(max_length=150)
    reason = forms.CharField(
        max_length=300,
        help_text="Why the user gets access (a joining order, a ticket). Kept in the audit log.",
    )
    field_order = (
        "username",
        "first_name",
        "last_name",
        "email",
        "role",
        "branches",
        "password1",
        "password2",
        "reason",
    )
    submit_label = "Create user"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order_fields(self.field_order)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        password = data.get("password1")
        if password:
            candidate = User(
                username=data.get("username", ""),
                email=data.get("email", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
            )
            try:
                validate_password(password, candidate)
            except ValidationError as exc:
                self.add_error("password1", exc)
        return data


class UserEditForm(_UserFields):
    reason = forms.CharField(
        max_length=300,
        required=False,
        help_text="Needed when the role or branches change; kept in the audit log.",
    )
    submit_label = "Save user"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order_fields(("first_name", "last_name", "email", "role", "branches", "reason"))


class PasswordResetForm(_NewPassword, ReasonForm):
    submit_label = "Set new password"
