"""The field catalogue agrees with KwikID's API description and with what the portal stores."""

from __future__ import annotations

from pathlib import Path

import yaml

from kwikid import fields
from kwikid.payload import record_to_payload
from records.models import KycRecord
from tests.records.factories import differently_abled_record

SPEC = yaml.safe_load((Path(fields.__file__).with_name("openapi.yaml")).read_text())["components"]["schemas"]


def _properties(schema: dict) -> dict[str, dict]:
    """Every leaf property of an API object that the API page's sample carries, flattened, by its own name
    (the integration guide's extra members, marked x-guide, are not sent)."""
    found: dict[str, dict] = {}
    for name, prop in schema.get("properties", {}).items():
        if "x-guide" in prop:
            continue
        if "$ref" in prop:
            found.update(_properties(SPEC[prop["$ref"].rsplit("/", 1)[1]]))
        elif prop.get("type") == "object":
            found.update(_properties(prop))
        else:
            found[name] = prop
    return found


def test_every_api_field_is_in_the_catalogue_once_and_nothing_else_is() -> None:
    assert sorted(fields.FIELDS) == sorted(set(fields.FIELDS))
    assert set(fields.FIELDS) == set(_properties(SPEC["Record"]))


def test_the_catalogue_lengths_are_the_api_lengths() -> None:
    api = _properties(SPEC["Record"])
    for name, prop in api.items():
        if "maxLength" in prop:
            assert fields.BY_NAME[name].max_length == prop["maxLength"], name


def test_each_field_sits_in_the_api_object_the_payload_puts_it_in() -> None:
    payload = record_to_payload(differently_abled_record())
    for section, names in fields.SECTIONS:
        part = payload if section == fields.RECORD else payload[section]
        for name in names:
            flat = {**part, **part.get("disability_info", {})}
            assert name in flat, (section, name)


def test_the_record_stores_each_field_in_at_least_the_api_length() -> None:
    for name, limit in fields.MAX_LENGTHS.items():
        assert KycRecord._meta.get_field(name).max_length >= limit, name
