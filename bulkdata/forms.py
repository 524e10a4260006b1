from __future__ import annotations

from typing import Any

from django import forms

from .parsers import MAX_UPLOAD_BYTES, MAX_XLSX_BYTES


class ImportForm(forms.Form):
    file = forms.FileField(
        label="File of records",
        help_text=(
            "CSV (UTF-8), Excel workbook (.xlsx, records on one sheet, values only) or JSON (KwikID's "
            "request body). "
            f"Up to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB ({MAX_XLSX_BYTES // (1024 * 1024)} MB for .xlsx)."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx,.json,text/csv,application/json"}),
    )
    branch: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        empty_label=None,
        help_text="Rows with an empty branch_code column go to this branch.",
    )
    submit = forms.BooleanField(
        label="Submit the records for review once imported", required=False, initial=False
    )

    def __init__(self, *args: Any, branches: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["branch"].queryset = branches  # type: ignore[attr-defined]

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"Uploads are limited to {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split the file."
            )
        return upload


class ConfirmForm(forms.Form):
    mode = forms.ChoiceField(choices=[("all", "all"), ("valid", "valid")])
