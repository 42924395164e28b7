"""A bounded Schemathesis run against /openapi.json, in-process (the ASGI app, no network).

Every operation gets generated requests; each response must match the document: its status is
declared, its body fits the declared schema, no 5xx. Bounded by `max_examples`, so the run stays
well under 20 s on this machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.main import create_app
from tests.api.conftest import app_settings

CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance,
          content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 25


@pytest.mark.slow
def test_api_agrees_with_its_openapi_document(tmp_path: Path) -> None:
    # Generous limits: the run must not be refused by the rate limits it also exercises.
    app = create_app(app_settings(tmp_path, admin_token="schemathesis-token",
                                  http_rate_limit_rooms="100000/minute",
                                  http_rate_limit_admin="100000/minute",
                                  admin_auth_failure_limit="100000/minute"))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=CHECKS)

        check()
