"""Property-based API tests (schemathesis over /openapi.json): no 5xx anywhere, and every response —
whatever the generated request — has a declared status, content type and a body matching its schema."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from tests.serve.conftest import KEY, build_warehouse, publish
from tongban.serve import identity
from tongban.serve.app import create_app

CHECKS = (schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    work = tmp_path_factory.mktemp("serve-properties")
    url = f"sqlite:///{work / 'state.sqlite'}"
    with pytest.MonkeyPatch.context() as mp:
        for var, value in (("TONGBAN_EXCHANGE_DIR", work / "exchange"), ("TONGBAN_BUILD_DIR", work / "build"),
                           ("TONGBAN_PSEUDONYM_KEY", KEY), ("TONGBAN_STATE_URL", url)):
            mp.setenv(var, str(value))
        build_warehouse(work / "warehouse.duckdb")
        publish(work / "exchange", work / "warehouse.duckdb")
        approver = identity.add_consumer("js-approver", "32", approver=True, url=url)
        consumer = identity.add_consumer("sh-health", "31", url=url)
        app = create_app(exchange_root=work / "exchange", state_url=url)
        with TestClient(app) as client:
            app_id = client.post("/api/v1/applications", headers={"Authorization": f"Bearer {consumer}"},
                                 json={"entity": "birth_registration", "provinces": ["32"], "purpose": "x",
                                       "days": 9}).json()["id"]
            client.post(f"/api/v1/applications/{app_id}/decision", headers={"Authorization": f"Bearer {approver}"},
                        json={"approve": True, "reason": "ok"})
            yield {"app": app, "tokens": {"consumer": consumer, "approver": approver}}


def test_no_5xx_and_every_response_matches_its_schema(api):
    # schemathesis' own pytest loader (from_fixture) needs pytest < 9, so each operation's strategy
    # is drawn here with Hypothesis directly
    schema = schemathesis.openapi.from_asgi("/openapi.json", api["app"])
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            for who in ("consumer", "approver"):
                case.call_and_validate(headers={"Authorization": f"Bearer {api['tokens'][who]}"}, checks=CHECKS)

        check()
