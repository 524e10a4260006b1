"""Which records of a batch a 400's ``detail`` names, under every shape KwikID has been seen to use."""

from __future__ import annotations

from typing import Any

import pytest

from kwikid.rejections import map_rejection


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ({"records[1].pan": ["bad"]}, {1: ["pan: bad"]}),
        ({"records.1.basic_details.gender": "bad"}, {1: ["basic_details.gender: bad"]}),
        ({"records/0/pan": ["bad"]}, {0: ["pan: bad"]}),
        ({"records[2]": "duplicate reference"}, {2: ["duplicate reference"]}),
        ({"records": [None, {"pan": ["bad"]}, {}]}, {1: ["pan: bad"]}),
        (
            {"records": {"0": {"poa": {"poa_pin_code": ["unknown PIN"]}}}},
            {0: ["poa.poa_pin_code: unknown PIN"]},
        ),
        ({"REF-3": {"pan": "mismatch"}}, {2: ["pan: mismatch"]}),
        ({"REF-2": "duplicate"}, {1: ["duplicate"]}),
        ({"records[9].pan": ["out of range"]}, {}),
        ({"fi_code": ["missing"]}, {}),
        ("plain message", {}),
        ([], {}),
    ],
)
def test_map_rejection_understands_index_and_reference_keys(
    detail: Any, expected: dict[int, list[str]]
) -> None:
    assert map_rejection(detail, ["REF-1", "REF-2", "REF-3"]) == expected
