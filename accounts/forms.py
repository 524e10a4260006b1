from __future__ import annotations

from django import forms


class TotpCodeForm(forms.Form):
    """The 6-digit code an authenticator app shows (spaces allowed, as some apps show "123 456")."""

    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=12,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not (code.isascii() and code.isdigit() and len(code) == 6):
            raise forms.ValidationError("Type the 6 digits your authenticator app shows.")
        return code


class ReplaceDeviceForm(TotpCodeForm):
    """Who asks to replace the authenticator proves it twice: their password, and a code from the app
    they use now."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    field_order = ["password", "code"]

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["code"].label = "Code from the authenticator app you use now"
        self.fields["code"].widget.attrs.pop("autofocus", None)
