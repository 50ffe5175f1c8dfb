"""Shared helpers for the alert tests: where the real payload fixtures live (outside the repo, never copied)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ALERT_FIXTURES = REPO.parent / "shared" / "fixtures" / "alerts"


def fixture_path(name: str) -> Path:
    path = ALERT_FIXTURES / name
    if not path.is_file():
        pytest.skip(f"alert fixture {path} is not present (../shared/fixtures/alerts is provided beside the repo)")
    return path


def load_fixture(name: str) -> Any:
    return json.loads(fixture_path(name).read_text(encoding="utf-8"))


AM_CPU = "prometheus-alertmanager_webhook-v4_firing_zulip-fixture.json"
GRAFANA = "grafana_unified-alerting_webhook_firing_docs.json"
PD_TRIGGERED = "pagerduty_webhook-v3_incident.triggered_zulip-fixture.json"
PD_RESOLVED = "pagerduty_webhook-v3_incident.resolved_zulip-fixture.json"
PD_PRIORITY_DOCS = "pagerduty_webhook-v3_incident.priority_updated_developer-docs.json"
PD_SIGNED_BODY = "pagerduty_webhook-v3_incident.priority_updated_go-pagerduty-signed-test-body.json"
PD_SIGNATURE_VECTOR = "pagerduty_webhook-v3_signature-test-vector_go-pagerduty.json"
PD_DATA_ONLY = "pagerduty_webhook-v3_event-data-incident-object_developer-docs.json"
DATADOG_TEMPLATE = "datadog_webhook_default-payload-TEMPLATE_documentation-api-example.json"
SENTRY = "sentry_metric-alert_webhook_resolved_docs.json"
