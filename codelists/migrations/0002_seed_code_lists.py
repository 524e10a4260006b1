"""Seed every code list from codelists.codes (the static seeds), with notes on where the lists come from."""

from django.db import migrations

# PIN-master spellings (India Post, upper case) that differ from the ISO name.
PIN_MASTER_NAMES = {"DH": "THE DADRA AND NAGAR HAVELI AND DAMAN AND DIU"}

STATE_NOTES = {
    "CG": "Public lists disagree: other lists (and ISO 3166-2 before its update) use CT. Confirm with CERSAI.",
    "UK": "Public lists disagree: other lists use UT. Confirm with CERSAI.",
    "OD": "Public lists disagree: older lists use OR (Orissa). Confirm with CERSAI.",
    "TS": "Public lists disagree: other lists use TG (the vehicle registration code). Confirm with CERSAI.",
    "DH": "One union territory since 2020; older lists have DN (Dadra and Nagar Haveli) and DD (Daman and Diu).",
    "LA": "Union territory since 2019; older lists include it in JK.",
    "KL": "Code seen in CERSAI's own samples (Download API v1.3).",
    "TN": "Code seen in CERSAI's own samples (Download API v1.3).",
}
STATE_SEED_NOTE = (
    "Seed: ISO 3166-2:IN without the IN- prefix (pycountry). CERSAI's State Master is not public; "
    "replace codes that differ once it is received."
)

LIST_NOTES = {
    "ImpairmentType": "PLACEHOLDER: CERSAI's Type of Impairment master is not public; groups of the RPwD Act "
    "2016. Replace with the official master.",
    "PoaDocument": "Officially valid documents only (RBI OVD list; CERSAI POA master codes per RB).",
    "KycType": "CERSAI ACC_TYPE.",
    "DocumentSubmittedType": "CERSAI DOC_SUB (codes per RB, a secondary source).",
    "Country": "ISO 3166-1 alpha-2 (pycountry).",
}

# Codes that exist in CERSAI's list but must not be used for new uploads: seeded inactive so admins see them.
INACTIVE = {"KycType": [("02", "Small account"), ("03", "Simplified measures account")]}


def seed(apps, schema_editor):
    from codelists import codes

    lists = {
        "NameTitle": codes.NAME_TITLES,
        "RelationFlag": codes.REL_FLAGS,
        "Gender": codes.GENDERS,
        "PoaDocument": codes.POA_DOCUMENTS,
        "DocumentSubmittedType": codes.DOCUMENT_SUBMITTED_TYPES,
        "KycType": codes.KYC_TYPES,
        "ImpairmentType": codes.IMPAIRMENT_TYPES,
        "State": codes.STATES,
        "Country": codes.COUNTRIES,
    }
    for model_name, entries in lists.items():
        model = apps.get_model("codelists", model_name)
        rows = []
        for index, (code, label) in enumerate(entries):
            extra = {}
            note = LIST_NOTES.get(model_name, "")
            if model_name == "State":
                extra["pin_master_name"] = PIN_MASTER_NAMES.get(code, label.upper())
                note = " ".join(filter(None, (STATE_NOTES.get(code, ""), STATE_SEED_NOTE)))
            rows.append(model(code=code, label=label, sort_order=(index + 1) * 10, note=note, **extra))
        for code, label in INACTIVE.get(model_name, []):
            rows.append(
                model(code=code, label=label, is_active=False, sort_order=900, note="Not for new uploads (RB).")
            )
        model.objects.bulk_create(rows, ignore_conflicts=True)
    stamp = apps.get_model("codelists", "CodeBookStamp")
    if not stamp.objects.exists():
        stamp.objects.create()


class Migration(migrations.Migration):
    dependencies = [("codelists", "0001_code_lists_and_pin_master")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
