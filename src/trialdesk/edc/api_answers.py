"""The answers every API operation documents besides its success, so that a client (and the
schema-driven fuzzing in tests/edc/test_api_fuzzing.py) can rely on the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from ninja import Schema


class Refusal(Schema):
    field: str
    detail: str


class Detail(Schema):
    detail: str


#: a body that is not JSON (400), not signed in (401), not allowed or no CSRF token (403), refused by the schema or the core (422)
DENIED: dict[int, Any] = {400: Detail, 401: Detail, 403: Detail, 422: Refusal}
#: ... and an operation on a record that is not there
MISSING: dict[int, Any] = {404: Detail}
