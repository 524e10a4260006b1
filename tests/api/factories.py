"""API clients for tests: the maker user a client acts as, the client, and its token (shown once)."""

from __future__ import annotations

from datetime import date
from typing import Any

from api.models import ApiClient
from api.tokens import new_token, token_hash, token_prefix
from institutions.models import Branch, Role, User
from kwikid.payload import record_to_payload
from tests.records.factories import valid_record


def make_client(name: str, *branches: Branch, **fields: Any) -> tuple[ApiClient, str]:
    """A client acting as maker "api-<name>" at ``branches``, and its token."""
    user = User.objects.create_user(username=f"api-{name}", password=None, role=Role.MAKER)
    user.branches.set(branches)
    token = new_token()
    client = ApiClient.objects.create(
        name=name,
        institution=branches[0].institution,
        user=user,
        token_hash=token_hash(token),
        token_prefix=token_prefix(token),
        **fields,
    )
    client.branches.set(branches)
    return client, token


def record_object(n: int = 1, **overrides: Any) -> dict[str, Any]:
    """A valid record in KwikID's shape (JSON-ready), reference ``CBS-<n>``."""
    data = valid_record()
    data.update({"kyc_ref_no": f"CBS-{n:06d}"} | overrides)
    payload = record_to_payload(data)
    if "existing_ckyc_no" in overrides:  # the portal's own member, not in KwikID's payload
        payload["existing_ckyc_no"] = overrides["existing_ckyc_no"]
    return _jsonable(payload)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
