"""KwikID's request schema (openapi.yaml beside this file), compiled once, checked before sending.

fastjsonschema compiles the schema to Python once, so checking a record costs a small fraction of what
jsonschema's interpreting validator costs: it runs on every record of every batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import yaml

SPEC_PATH = Path(__file__).with_name("openapi.yaml")


@functools.cache
def _validator(schema: str) -> Callable[[Any], Any]:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    # Draft 7 covers every keyword the description uses; its x-guide annotations are ignored.
    root = {"$schema": "http://json-schema.org/draft-07/schema#", "$ref": f"#/components/schemas/{schema}"}
    return fastjsonschema.compile({**root, "components": spec["components"]})  # type: ignore[no-any-return]


def record_problem(record: dict[str, Any], *, guide_fields: bool = False) -> str | None:
    """Why KwikID's schema would refuse this record object, or None when it would pass: the API page's
    ``Record``, or with ``guide_fields`` the integration guide's ``GuideRecord`` (two more members)."""
    try:
        _validator("GuideRecord" if guide_fields else "Record")(record)
    except fastjsonschema.JsonSchemaValueException as exc:
        return exc.message.replace("data.", "", 1).replace("data ", "record ", 1)
    return None
