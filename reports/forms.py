from __future__ import annotations

from django import forms

from institutions.models import Branch

from .audit import audit_actions


class AuditFilterForm(forms.Form):
    """The audit log's filters; every one optional. Bad values are named on the form, not ignored."""

    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    actor = forms.CharField(required=False, max_length=150, label="User")
    action = forms.ChoiceField(required=False, label="Action")
    branch = forms.ModelChoiceField(
        queryset=Branch.objects.none(), required=False, empty_label="All branches"
    )
    ref = forms.CharField(required=False, max_length=50, label="KYC reference number")

    def __init__(self, *args: object, branches: object = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["action"].choices = [("", "All actions"), *audit_actions()]  # type: ignore[attr-defined]
        if branches is not None:
            self.fields["branch"].queryset = branches  # type: ignore[attr-defined]
        for field in self.fields.values():
            is_select = isinstance(field.widget, forms.Select)
            field.widget.attrs["class"] = "form-select" if is_select else "form-control"

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:  # type: ignore[operator]
            self.add_error("date_to", "The end date is before the start date.")
        return data
