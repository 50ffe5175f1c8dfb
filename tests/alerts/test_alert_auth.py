"""Alert webhook authentication: PagerDuty v3 signatures (go-pagerduty's own test vector), bearer tokens compared in
constant time, Grafana-style HMAC, and the policy that combines them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from alert_fixture_files import PD_SIGNATURE_VECTOR, fixture_path, load_fixture

from bot.alerts.auth import (
    MAX_BODY_BYTES,
    PAGERDUTY_SIGNATURE_HEADER,
    AlertAuth,
    AlertAuthError,
    bearer_token_ok,
    hmac_sign,
    hmac_signature_ok,
    pagerduty_sign,
    pagerduty_signature_ok,
)


@pytest.fixture
def vector() -> tuple[dict[str, str], bytes]:
    spec = load_fixture(PD_SIGNATURE_VECTOR)
    return spec, fixture_path(spec["body_file"]).read_bytes()


def test_max_body_is_one_mebibyte() -> None:
    assert MAX_BODY_BYTES == 1_048_576


def test_go_pagerduty_vector_valid_signature_verifies(vector: tuple[dict[str, str], bytes]) -> None:
    spec, body = vector
    assert spec["header"] == PAGERDUTY_SIGNATURE_HEADER
    assert pagerduty_sign(body, spec["secret"]) == spec["valid_signature"]
    assert pagerduty_signature_ok(body, spec["valid_signature"], spec["secret"])


def test_go_pagerduty_vector_mismatch_signature_is_refused(vector: tuple[dict[str, str], bytes]) -> None:
    spec, body = vector
    assert not pagerduty_signature_ok(body, spec["mismatch_signature"], spec["secret"])


def test_signature_over_a_reencoded_body_is_refused(vector: tuple[dict[str, str], bytes]) -> None:
    """The HMAC covers the raw bytes: the same JSON pretty-printed no longer verifies."""
    spec, body = vector
    reencoded = json.dumps(json.loads(body), indent=2).encode()
    assert not pagerduty_signature_ok(reencoded, spec["valid_signature"], spec["secret"])


def test_several_signatures_during_rotation(vector: tuple[dict[str, str], bytes]) -> None:
    spec, body = vector
    header = f"{spec['mismatch_signature']}, {spec['valid_signature']}"
    assert pagerduty_signature_ok(body, header, spec["secret"])
    # and the other way round: one header signature, several secrets of ours
    assert pagerduty_signature_ok(body, spec["valid_signature"], ["old-secret", spec["secret"]])


@pytest.mark.parametrize("header", [None, "", "v1=", "v0=" + "0" * 64, "garbage", "V1=abc"])
def test_missing_or_malformed_signature_is_refused(vector: tuple[dict[str, str], bytes], header: str | None) -> None:
    spec, body = vector
    assert not pagerduty_signature_ok(body, header, spec["secret"])


def test_empty_secret_verifies_nothing(vector: tuple[dict[str, str], bytes]) -> None:
    _, body = vector
    assert not pagerduty_signature_ok(body, pagerduty_sign(body, ""), "")


@pytest.mark.parametrize(("header", "ok"), [("Bearer s3cret", True), ("bearer s3cret", True), ("Bearer  s3cret ", True),
                                             ("Bearer s3cre", False), ("Bearer s3cret2", False), ("Basic s3cret", False),
                                             ("s3cret", False), (None, False), ("", False)])
def test_bearer_token(header: str | None, ok: bool) -> None:
    assert bearer_token_ok(header, "s3cret") is ok


def test_bearer_with_empty_expected_token_never_passes() -> None:
    assert not bearer_token_ok("Bearer ", "")


def test_grafana_hmac_with_and_without_timestamp() -> None:
    body = b'{"alerts":[]}'
    plain = hmac_sign(body, "k")
    assert hmac_signature_ok(body, plain, "k")
    assert hmac_signature_ok(body, plain.upper(), "k")  # hex case does not matter
    assert not hmac_signature_ok(body + b" ", plain, "k")
    stamped = hmac_sign(body, "k", "1714557600")
    assert stamped != plain
    assert hmac_signature_ok(body, stamped, "k", "1714557600")
    assert not hmac_signature_ok(body, stamped, "k", "1714557601")


# --- the policy ---------------------------------------------------------------------------------------------


BODY = b'{"name":"X","status":"firing"}'


def test_nothing_configured_refuses_everything() -> None:
    with pytest.raises(AlertAuthError, match="disabled"):
        AlertAuth().check("generic", {"Authorization": "Bearer x"}, BODY)


def test_bearer_policy() -> None:
    auth = AlertAuth(token="t0ken")
    assert auth.check("alertmanager", {"authorization": "Bearer t0ken"}, BODY) == "bearer"
    with pytest.raises(AlertAuthError, match="bearer token is not valid"):
        auth.check("alertmanager", {"Authorization": "Bearer nope"}, BODY)
    with pytest.raises(AlertAuthError, match="missing credentials: Authorization: Bearer <token>") as caught:
        auth.check("alertmanager", {}, BODY)
    assert caught.value.status == 401
    assert "t0ken" not in repr(auth)


def test_pagerduty_policy_accepts_signature_or_token_but_not_a_bad_signature(
        vector: tuple[dict[str, str], bytes]) -> None:
    spec, body = vector
    auth = AlertAuth(token="t0ken", pagerduty_secrets=(spec["secret"],))
    assert auth.check("pagerduty", {"x-pagerduty-signature": spec["valid_signature"]}, body) == "pagerduty_signature"
    assert auth.check("pagerduty", {"Authorization": "Bearer t0ken"}, body) == "bearer"
    with pytest.raises(AlertAuthError, match="X-PagerDuty-Signature does not match"):
        auth.check("pagerduty", {PAGERDUTY_SIGNATURE_HEADER: spec["mismatch_signature"],
                                 "Authorization": "Bearer t0ken"}, body)
    with pytest.raises(AlertAuthError, match="Bearer <token> or X-PagerDuty-Signature"):
        auth.check("pagerduty", {}, body)
    # a PagerDuty signature means nothing on another source's endpoint
    with pytest.raises(AlertAuthError, match="missing credentials"):
        auth.check("alertmanager", {PAGERDUTY_SIGNATURE_HEADER: spec["valid_signature"]}, body)


def test_signature_only_pagerduty_configuration(vector: tuple[dict[str, str], bytes]) -> None:
    spec, body = vector
    auth = AlertAuth(pagerduty_secrets=(spec["secret"],))
    assert auth.check("pagerduty", {PAGERDUTY_SIGNATURE_HEADER: spec["valid_signature"]}, body)
    with pytest.raises(AlertAuthError, match="missing credentials: X-PagerDuty-Signature"):
        auth.check("pagerduty", {}, body)


def test_hmac_policy_with_timestamp_and_skew() -> None:
    auth = AlertAuth(hmac_secret="k", hmac_timestamp_header="X-Grafana-Alerting-Signature-Timestamp")
    now = datetime(2024, 5, 1, 10, tzinfo=UTC)
    ts = str(int(now.timestamp()))
    headers = {"X-Grafana-Alerting-Signature": hmac_sign(BODY, "k", ts), "X-Grafana-Alerting-Signature-Timestamp": ts}
    assert auth.check("grafana", headers, BODY, now=now) == "hmac_signature"
    assert auth.check("generic", headers, BODY, now=now) == "hmac_signature"
    late = datetime.fromtimestamp(now.timestamp() + 301, UTC)
    with pytest.raises(AlertAuthError, match="more than 300 s away"):
        auth.check("grafana", headers, BODY, now=late)
    with pytest.raises(AlertAuthError, match="does not match"):
        auth.check("grafana", headers, BODY + b"x", now=now)
    with pytest.raises(AlertAuthError, match="missing X-Grafana-Alerting-Signature-Timestamp"):
        auth.check("grafana", {"X-Grafana-Alerting-Signature": headers["X-Grafana-Alerting-Signature"]}, BODY)
