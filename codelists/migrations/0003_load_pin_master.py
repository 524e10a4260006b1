"""Load the full PIN master from the indian-pincode package (~19,600 PINs), so every new database has it.

``manage.py refresh_pin_master`` reloads it later (after upgrading the package, or from CERSAI's own file).
"""

import uuid

from django.db import migrations


def load(apps, schema_editor):
    from codelists.pin_sources import package_description, rows_from_package

    pin_code = apps.get_model("codelists", "PinCode")
    rows = {(row.pin, row.state_name): row.district for row in rows_from_package()}
    pin_code.objects.bulk_create(
        (pin_code(pin=pin, state_name=state, district=district) for (pin, state), district in rows.items()),
        batch_size=5000,
        ignore_conflicts=True,
    )
    apps.get_model("codelists", "CodeBookStamp").objects.update(token=uuid.uuid4())
    apps.get_model("institutions", "AuditEvent").objects.create(
        action="pin_master_refreshed",
        object_type="PinCode",
        detail={"source": package_description(), "rows": len(rows), "by": "migration codelists 0003"},
    )


def unload(apps, schema_editor):
    apps.get_model("codelists", "PinCode").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("codelists", "0002_seed_code_lists"), ("institutions", "0001_initial")]

    operations = [migrations.RunPython(load, unload)]
