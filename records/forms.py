"""The record form: every member of a record on the API page, in the API's sections and names."""

from __future__ import annotations

from datetime import date
from typing import Any

from crispy_forms.helper import FormHelper
from crispy_forms.layout import HTML, Column, Div, Fieldset, Layout, Row
from django import forms
from django.utils import timezone

from codelists.codes import CODED_LISTS, CodeBook
from codelists.selectors import code_book
from institutions.models import Branch
from kwikid.fields import CURRENT_ADDRESS_FIELDS, FIELD_LABELS

from .models import KycRecord
from .services import RECORD_FIELDS
from .validation import (
    AADHAAR_MESSAGE,
    Problem,
    blocking_problems,
    contains_aadhaar,
    normalise_record,
    validate_record,
)

# What submission needs, derived from the rules themselves: an empty record, and one as a new form starts
# (an address in India, whose PIN code is then required), checked as complete.
SUBMIT_REQUIRED = frozenset(
    p.field
    for start in ({}, {"poa_country": "IN"})
    for p in validate_record(start, complete=True, today=date(2000, 1, 1))
    if p.message.endswith("required")
)

AADHAAR_WIPED = (
    "The whole field was cleared so that the number is not shown again: retype what belongs in it."
)

DATE_WIDGET = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def add_problems(form: forms.BaseForm, problems: list[Problem]) -> None:
    """Attach blocking problems to the fields they name (or to the form when it has no such field).

    Callers pass only what blocks: errors, plus warnings when the institution makes warnings block.
    """
    for problem in problems:
        field = problem.field if problem.field in form.fields else None
        if field and problem.message in form.errors.get(field, []):
            continue
        form.add_error(field, problem.message)


class KycRecordForm(forms.ModelForm):
    """Entry and editing. Saving a draft checks what is filled; submitting also checks completeness."""

    branch = forms.ModelChoiceField(queryset=Branch.objects.none(), empty_label=None)

    class Meta:
        model = KycRecord
        fields = ("branch", *RECORD_FIELDS, "existing_ckyc_no")
        widgets = {
            "dob": DATE_WIDGET,
            "kyc_declaration_date": DATE_WIDGET,
            "kyc_verification_date": DATE_WIDGET,
        }
        help_texts = {
            "kyc_ref_no": "Your institution's unique reference for this KYC record.",
            "pan": "10 characters, e.g. ABCPE1234F; the 4th letter is P for an individual.",
            # KwikID's upload API (and so CERSAI's record through it) has first and middle name only.
            "applicant_first_name": (
                "KwikID's upload API has no surname field: write the name as on the PAN card, the first "
                "name here and every other name, the surname last, under Middle name."
            ),
            "applicant_middle_name": "Every name after the first, ending with the surname.",
            "poa_pin_code": "Required for an address in India.",
            "poa_document_number": "For Aadhaar: the last 4 digits only. Never enter a full Aadhaar number.",
            "mobile_isd": "Digits only, without +, e.g. 91.",
            "udid_number": "Unique Disability ID: 2 letters and 16 digits.",
            "existing_ckyc_no": (
                "Only when the customer already has a CKYC number: the record then updates it, and the "
                "shorter deadline for updates applies. Kept in the portal, not sent to KwikID."
            ),
        }

    def __init__(self, *args: Any, branches: Any, codes: CodeBook | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Mutable, so a full Aadhaar number can be wiped from the re-rendered form.
        self.data = self.data.copy()  # type: ignore[attr-defined]
        self.warnings: list[Problem] = []
        self.codes = codes or code_book()
        self.fields["branch"].queryset = branches  # type: ignore[attr-defined]
        for name in RECORD_FIELDS:
            self.fields[name].required = False  # completeness is CKYC validation's call, on submit
        self.fields["kyc_ref_no"].required = True
        for name, field in self.fields.items():
            # One wording everywhere: the form, its errors, validation's messages, the record page, history.
            if name in FIELD_LABELS:
                field.label = FIELD_LABELS[name]
            field.error_messages["required"] = f"{field.label} is required"
        # The label without the submission mark, for the error summary (the mark is for the form itself).
        self.plain_labels = {name: str(field.label) for name, field in self.fields.items()}
        for name in CODED_LISTS:
            blank = [] if name == "current_address_same_as_poa_address" else [("", "---------")]
            # Inactive codes are not offered, except the one this record already holds (shown as such).
            current = str(getattr(self.instance, name, "") or "") if self.instance.pk else ""
            choices = self.codes.field_choices(name, keep=current)
            self.fields[name].widget = forms.Select(choices=[*blank, *choices])
        for name in SUBMIT_REQUIRED - {"kyc_ref_no"}:
            # Marked as crispy marks required fields; a draft may still be saved without them.
            self.fields[name].label = f"{self.fields[name].label}*"
            self.fields[name].widget.attrs["aria-describedby"] = "submit-required-note"
        self.fields["current_address_same_as_poa_address"].widget.attrs["data-toggles"] = "current-address"
        self.fields["differently_abled_flag"].widget.attrs["data-toggles"] = "disability"
        if self.instance.pk:
            self.fields["branch"].disabled = True
        self.helper = FormHelper()
        self.helper.form_tag = False
        self.helper.layout = Layout(
            Fieldset(
                "Record",
                Row(Column("branch"), Column("kyc_ref_no"), Column("pan")),
                Row(Column("existing_ckyc_no", css_class="col-md-4")),
            ),
            Fieldset(
                "Basic details",
                Row(
                    Column("applicant_name_title", css_class="col-md-2"),
                    Column("applicant_first_name"),
                    Column("applicant_middle_name"),
                ),
                Row(Column("gender", css_class="col-md-3"), Column("dob", css_class="col-md-3")),
                HTML('<h3 class="h6 mt-2">Relation details</h3>'),
                Row(
                    Column("applicant_rel_details_flag", css_class="col-md-2"),
                    Column("applicant_rel_name_title", css_class="col-md-2"),
                    Column("applicant_rel_first_name"),
                    Column("applicant_rel_middle_name"),
                ),
                HTML('<h3 class="h6 mt-2">Disability information</h3>'),
                "differently_abled_flag",
                Div(
                    Row(Column("impairment_type"), Column("impairment_percentage"), Column("udid_number")),
                    css_id="disability",
                ),
            ),
            Fieldset(
                "Proof of address",
                Row(Column("poa_document"), Column("poa_document_number")),
                "poa_address_line_1",
                Row(Column("poa_vtc"), Column("poa_state"), Column("poa_country"), Column("poa_pin_code")),
            ),
            Fieldset(
                "Current address",
                "current_address_same_as_poa_address",
                Div(
                    "current_address_line_1",
                    Row(
                        Column("current_vtc"),
                        Column("current_state"),
                        Column("current_country"),
                        Column("current_pin_code"),
                    ),
                    css_id="current-address",
                ),
            ),
            Fieldset(
                "Contact details",
                Row(
                    Column("mobile_isd", css_class="col-md-2"), Column("mobile_number", css_class="col-md-4")
                ),
            ),
            Fieldset(
                "KYC verification details",
                Row(Column("kyc_declaration_date"), Column("kyc_declaration_place")),
                Row(
                    Column("kyc_verification_date"),
                    Column("kyc_type"),
                    Column("kyc_type_of_document_submitted"),
                ),
                Row(Column("kyc_verifier_name"), Column("kyc_verifier_designation")),
                Row(Column("kyc_verifier_branch"), Column("kyc_verifier_employee_code")),
            ),
            Div(
                HTML(
                    '<button type="submit" name="action" value="save" class="btn btn-outline-primary">'
                    "Save draft</button> "
                    '<button type="submit" name="action" value="submit" class="btn btn-primary ms-2">'
                    "Save and submit for review</button>"
                ),
                css_class="mt-3",
            ),
        )

    @property
    def error_labels(self) -> list[tuple[str, str]]:
        """(input id, label) of each field with an error, in form order, for the summary at the top."""
        return [
            (self[name].id_for_label, self.plain_labels[name]) for name in self.fields if name in self.errors
        ]

    @property
    def submitting(self) -> bool:
        return str(self.data.get("action", "")).lower() in ("submit", "save and submit for review")

    def clean_kyc_ref_no(self) -> str:
        value = str(self.cleaned_data.get("kyc_ref_no", "")).strip()
        clash = KycRecord.objects.filter(kyc_ref_no__iexact=value).exclude(pk=self.instance.pk)
        if value and clash.exists():
            raise forms.ValidationError(
                "Another record already has this KYC reference number (ignoring case); each must be unique."
            )
        return value

    def validate_constraints(self) -> None:
        # Checked above with a message on the field; the database constraint stays the backstop.
        pass

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("current_address_same_as_poa_address") == "Y":
            for name in CURRENT_ADDRESS_FIELDS:
                cleaned[name] = ""
        if not cleaned.get("differently_abled_flag"):
            cleaned.update(impairment_type="", impairment_percentage=None, udid_number="")
        if not cleaned.get("mobile_number"):
            cleaned["mobile_isd"] = ""  # the ISD code is pre-filled; without a number it means nothing
        # A field that already failed its own checks is left out: it counts as blank, not as a second error.
        data = normalise_record({name: cleaned[name] for name in RECORD_FIELDS if name in cleaned})
        cleaned.update(data)
        problems = validate_record(
            data, complete=self.submitting, today=timezone.localdate(), codes=self.codes
        )
        blocking = blocking_problems(
            problems, warnings_block=self.submitting and self._warnings_block(cleaned)
        )
        self.warnings = [p for p in problems if p not in blocking]
        for index, problem in enumerate(blocking):
            if problem.message == AADHAAR_MESSAGE or contains_aadhaar(str(self.data.get(problem.field, ""))):
                # Never send a full Aadhaar number back to the browser, not even to correct it; say so, or
                # the maker of a long address wonders where the rest of it went.
                self.data[self.add_prefix(problem.field)] = ""  # type: ignore[index]
                blocking[index] = Problem(problem.field, f"{problem.message}. {AADHAAR_WIPED}")
        add_problems(self, [p for p in blocking if p.field not in self.errors])
        return cleaned

    def _warnings_block(self, cleaned: dict[str, Any]) -> bool:
        branch = cleaned.get("branch") or (self.instance.branch if self.instance.pk else None)
        return bool(branch and branch.institution.warnings_block)


class ReturnForm(forms.Form):
    reason = forms.CharField(
        label="Reason for returning",
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=1000,
        help_text="The maker sees this and fixes the record.",
        error_messages={"required": "Say why the record is returned, so the maker can fix it."},
    )

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"])
        if contains_aadhaar(reason):
            # The reason is kept in the record's history for years: no full Aadhaar number in it, ever.
            data = self.data.copy()  # type: ignore[attr-defined]
            data[self.add_prefix("reason")] = ""
            self.data = data
            raise forms.ValidationError(
                "The reason contains a full Aadhaar number: write at most its last 4 digits"
            )
        return reason
