"""The OpenAPI document and its docs page, served from the installed package under the portal's CSP."""

from __future__ import annotations

import re

from django.test import Client


def test_the_document_describes_every_endpoint_and_kwikids_record(db: None) -> None:
    response = Client().get("/api/v1/openapi.json")

    assert response.status_code == 200
    doc = response.json()
    assert set(doc["paths"]) == {"/api/v1/records/", "/api/v1/records/{kyc_ref_no}"}
    assert set(doc["paths"]["/api/v1/records/"]) == {"get", "post"}
    schemas = doc["components"]["schemas"]
    record = schemas["KwikIDRecord"]
    assert record["additionalProperties"] is False
    assert "existing_ckyc_no" in record["properties"]
    assert schemas["KwikIDBasicDetails"]["properties"]["disability_info"] == {
        "$ref": "#/components/schemas/KwikIDDisabilityInfo"
    }
    assert schemas["RecordsIn"]["required"] == ["branch_code", "records"]
    assert schemas["RecordsIn"]["properties"]["records"]["maxItems"] == 1000
    assert doc["components"]["securitySchemes"] == {"ClientBearer": {"type": "http", "scheme": "bearer"}}


def test_the_docs_page_loads_its_scripts_from_the_portal_not_a_cdn(db: None) -> None:
    client = Client()
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    page = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and all(asset.startswith("/static/ninja/") for asset in assets)
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "<script>" not in page  # only src= scripts and a JSON data block: no inline script for CSP
    for asset in assets:
        assert client.get(asset).status_code == 200


def test_the_api_root_is_a_json_404(db: None) -> None:
    response = Client().get("/api/v1/")

    assert response.status_code == 404
    assert response.json()["detail"] == "Not found"
