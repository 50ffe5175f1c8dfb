"""HTTP actions against a real aiohttp server on loopback: expected status, idempotent-only retries,
templated requests, redacted summaries."""

from __future__ import annotations

import httpx

from actions.http import HttpSpec, HttpTemplate, run_http
from actions.result import Outcome
from tests.actions.conftest import LocalServer


async def _no_sleep(_: float) -> None:
    """Backoff delays are recorded by the caller's sleep; the tests need not wait them out."""


async def test_expected_status_succeeds_with_a_redacted_summary(server: LocalServer) -> None:
    lines: list[str] = []

    async def on_line(line: str) -> None:
        lines.append(line)

    result = await run_http(HttpSpec("GET", f"{server.url}/ok"), on_line=on_line)
    assert result.outcome is Outcome.SUCCEEDED
    assert result.exit_code == 200
    assert result.output.startswith(f"GET {server.url}/ok -> 200 OK in ")
    assert '"status": "rolled back"' in result.output
    assert "xoxb-1111-2222-abcdefghij" not in result.output  # the body carried a token
    assert "[REDACTED]" in result.output
    assert lines and lines[0].startswith("GET ")


async def test_an_unexpected_status_fails(server: LocalServer) -> None:
    result = await run_http(HttpSpec("POST", f"{server.url}/status/409", expected_status=(200, 201)))
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 409
    assert result.error == "unexpected status 409 (expected 200, 201)"


async def test_an_idempotent_call_is_retried_with_backoff_until_it_succeeds(server: LocalServer) -> None:
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    spec = HttpSpec("PUT", f"{server.url}/flaky?fail=2", expected_status=202, idempotent=True, retries=3, backoff_s=0.2)
    result = await run_http(spec, sleep=sleep)
    assert result.outcome is Outcome.SUCCEEDED
    assert server.hits["flaky"] == 3
    assert result.attempts == 3
    assert delays == [0.2, 0.4]


async def test_a_call_not_marked_idempotent_is_sent_once(server: LocalServer) -> None:
    spec = HttpSpec("POST", f"{server.url}/flaky?fail=2", expected_status=202, idempotent=False, retries=3)
    result = await run_http(spec, sleep=_no_sleep)
    assert result.outcome is Outcome.FAILED
    assert result.exit_code == 503
    assert server.hits["flaky"] == 1


async def test_a_client_error_is_not_retried_even_when_idempotent(server: LocalServer) -> None:
    spec = HttpSpec("PUT", f"{server.url}/status/404", idempotent=True, retries=3)
    result = await run_http(spec, sleep=_no_sleep)
    assert result.outcome is Outcome.FAILED
    assert server.hits["status"] == 1


async def test_idempotent_retries_stop_after_the_last_attempt(server: LocalServer) -> None:
    spec = HttpSpec("PUT", f"{server.url}/flaky?fail=10", expected_status=202, idempotent=True, retries=2)
    result = await run_http(spec, sleep=_no_sleep)
    assert result.outcome is Outcome.FAILED
    assert server.hits["flaky"] == 3 and result.attempts == 3


async def test_the_request_is_built_from_templates_with_values_kept_in_their_place(server: LocalServer) -> None:
    template = HttpTemplate(
        method="POST",
        url=server.url + "/releases/{version}/rollback",
        headers={"Authorization": "Bearer {token}"},
        json_body={"version": "{version}", "percent": "{pct}", "note": "rollback to {version}"},
        expected_status=201,
    )
    values = {"version": "v2.3.1", "pct": 50, "token": "tok_0123456789abcdef"}
    result = await run_http(template.render(values))
    assert result.outcome is Outcome.SUCCEEDED
    assert server.received == [
        {
            "path": "/releases/v2.3.1/rollback",
            "json": {"version": "v2.3.1", "percent": 50, "note": "rollback to v2.3.1"},
            "auth": "Bearer tok_0123456789abcdef",
        }
    ]


async def test_a_path_value_cannot_escape_its_segment(server: LocalServer) -> None:
    spec = HttpTemplate(method="POST", url=server.url + "/releases/{version}/rollback").render({"version": "../../admin?x=1"})
    assert spec.url == f"{server.url}/releases/..%2F..%2Fadmin%3Fx%3D1/rollback"


async def test_a_slow_server_times_out(server: LocalServer) -> None:
    result = await run_http(HttpSpec("GET", f"{server.url}/slow?ms=2000", timeout_s=0.2))
    assert result.outcome is Outcome.TIMED_OUT
    assert result.exit_code is None


async def test_the_plan_hides_credentials(server: LocalServer) -> None:
    spec = HttpSpec(
        "POST",
        f"{server.url}/ok",
        headers={"Authorization": "Bearer abc", "X-Trace": "1"},
        json_body={"password": "hunter2hunter2"},
    )
    plan = spec.plan()
    assert plan.command == f"POST {server.url}/ok"
    assert plan.details["headers"] == {"Authorization": "[REDACTED]", "X-Trace": "1"}
    assert "hunter2hunter2" not in str(plan.details)


async def test_a_shared_client_is_left_open(server: LocalServer) -> None:
    async with httpx.AsyncClient() as client:
        await run_http(HttpSpec("GET", f"{server.url}/ok"), client=client)
        assert not client.is_closed


def test_a_filled_url_cannot_be_normalised_out_of_its_path_segment() -> None:
    """httpx normalises /services/../rollback to /rollback: a value of '.' or '..' is refused when the URL is
    built, and a value containing slashes or dots stays inside its one segment of the URL httpx sends."""
    import pytest

    from actions.templates import TemplateError

    template = HttpTemplate("POST", "https://deploy.example.test/services/{svc}/rollback")
    for dots in ("..", "."):
        with pytest.raises(TemplateError):
            template.render({"svc": dots})
    for sneaky in ("../admin", "..%2F..", "a/../../b", "x?y=1#z"):
        url = httpx.URL(template.render({"svc": sneaky}).url)
        assert url.path.startswith("/services/") and url.path.endswith("/rollback"), url
        assert url.raw_path.count(b"/") == 3, url.raw_path
        assert not url.query and not url.fragment
