"""A gradual traffic restore as one execution: per stage, the traffic script (`--percentage N`) then its check.

actions/traffic.py decides (a failed check halts, an inconclusive one pauses); this module runs each piece
through the ActionRunner (process groups, redaction, cancel) and records what happened for the thread and
the Technical Lead's choice: roll traffic back, retry the stage, or continue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from actions.check import CheckSpec
from actions.output import OutputBuffer
from actions.prometheus import PrometheusCheckSpec
from actions.result import ActionResult, CheckResult, CheckVerdict, Monotonic, OnLine, Outcome
from actions.runner import ActionRunner
from actions.shell import ShellSpec
from actions.traffic import Completed, Halted, Paused, StageReport, restore_traffic


class StagedRun:
    def __init__(self, runner: ActionRunner, execution_id: str, stage_spec: Callable[[int], ShellSpec],
                 check: CheckSpec | PrometheusCheckSpec | None, *, secrets: Sequence[str], on_line: OnLine, cancel: asyncio.Event,
                 monotonic: Monotonic, max_output_bytes: int, gates: Sequence[PrometheusCheckSpec] = (),
                 notes: Sequence[str] = ()) -> None:
        self.runner = runner
        self.execution_id = execution_id
        self.stage_spec = stage_spec
        self.check_spec = check
        self.gates = tuple(gates)  # metric gates after the check: each stage must pass them all
        self.notes = tuple(notes)  # said once, before the first stage (a gate no Prometheus can measure)
        self.secrets = tuple(secrets)
        self.cancelled = cancel
        self.monotonic = monotonic
        self.buffer = OutputBuffer(max_output_bytes)
        self._on_line = on_line
        self.current: str | None = None  # the runner id of the piece running now, for Cancel
        self.last_script: ActionResult | None = None
        self._stage = 0

    def cancel(self) -> None:
        self.cancelled.set()
        if self.current is not None:
            self.runner.cancel(self.current)

    async def line(self, text: str) -> None:
        self.buffer.add(text)
        await self._on_line(text)

    async def set_traffic(self, percent: int) -> ActionResult:
        self._stage = percent
        if self.cancelled.is_set():
            return ActionResult(Outcome.CANCELLED, None, 0.0, "")
        await self.line(f"[rollbot] stage {percent}%: routing traffic")
        self.current = f"{self.execution_id}:stage:{percent}"
        result = await self.runner.run(self.current, self.stage_spec(percent), on_line=self.line, secrets=self.secrets)
        self.current = None
        self.last_script = result
        if self.cancelled.is_set():
            return ActionResult(Outcome.CANCELLED, result.exit_code, result.duration_s, "")
        return result

    async def check(self, percent: int) -> CheckResult:
        """The stage's check, then its metric gates in order: the first that does not pass is the verdict."""
        specs: list[CheckSpec | PrometheusCheckSpec] = [*([self.check_spec] if self.check_spec else []), *self.gates]
        if not specs:
            return CheckResult(CheckVerdict.PASSED, None, None, "no check configured for this action")
        passed: list[CheckResult] = []
        for n, spec in enumerate(specs):
            if self.cancelled.is_set():
                return CheckResult(CheckVerdict.INCONCLUSIVE, None, None, "cancelled")
            self.current = f"{self.execution_id}:check:{percent}" + (f":{n}" if n else "")
            result = await self.runner.run(self.current, spec, on_line=self.line)
            self.current = None
            if result.check is None:
                return CheckResult(CheckVerdict.INCONCLUSIVE, None, None, result.error or "the check gave no verdict")
            if not result.check.passed:
                return result.check
            passed.append(result.check)
        first = passed[0]  # the HTTP probe's status and latency, for the stage's record
        return CheckResult(CheckVerdict.PASSED, first.status, first.latency_ms, "; ".join(c.reason for c in passed))

    async def run(self, stages: Sequence[int], all_stages: Sequence[int]) -> tuple[ActionResult, dict[str, Any]]:
        """Run `stages` (the tail of `all_stages` when resuming). Returns the aggregate result and the record."""
        started = self.monotonic()

        async def check() -> CheckResult:
            return await self.check(self._stage)

        for note in self.notes:
            await self.line(note)
        outcome = await restore_traffic(stages, self.set_traffic, check)
        took = self.monotonic() - started
        reports = [*outcome.stages]
        data: dict[str, Any] = {"mode": "stages", "stages": [_report(r) for r in reports]}
        if self.cancelled.is_set():
            return ActionResult(Outcome.CANCELLED, None, took, self.buffer.text(), self.buffer.truncated), data
        if isinstance(outcome, Completed):
            data["traffic_result"] = "completed"
            await self.line(f"[rollbot] traffic restored: {' → '.join(f'{r.percent}%' for r in reports)}")
            return ActionResult(Outcome.SUCCEEDED, 0, took, self.buffer.text(), self.buffer.truncated), data
        assert isinstance(outcome, Halted | Paused)
        at = outcome.stage
        lower = [s for s in all_stages if s < at]
        higher = [s for s in all_stages if s > at]
        data.update(traffic_result="halted" if isinstance(outcome, Halted) else "paused", at=at,
                    rollback_to=lower[-1] if lower else None, next_stage=higher[0] if higher else None)
        await self.line(f"[rollbot] {data['traffic_result']} at {at}%: {outcome.reason}")
        script_failed = reports and reports[-1].check is None and self.last_script is not None
        code = self.last_script.exit_code if script_failed and self.last_script else None
        result = ActionResult(Outcome.FAILED, code, took, self.buffer.text(), self.buffer.truncated, error=outcome.reason)
        return result, data

    async def roll_back(self, to: int, resume_from: int | None) -> tuple[ActionResult, dict[str, Any]]:
        """Send traffic back to an earlier stage that passed (no check: it passed before)."""
        started = self.monotonic()
        result = await self.set_traffic(to)
        data: dict[str, Any] = {"mode": "rollback", "to": to, "resume_from": resume_from,
                                "stages": [{"percent": to, "verdict": None, "reason": "rolled back"}]}
        took = self.monotonic() - started
        outcome = Outcome.CANCELLED if self.cancelled.is_set() else result.outcome
        return ActionResult(outcome, result.exit_code, took, self.buffer.text(), self.buffer.truncated,
                            error=result.error), data


def _report(report: StageReport) -> dict[str, Any]:
    check = report.check
    if check is None:
        return {"percent": report.percent, "verdict": "failed", "reason": "traffic script failed"}
    return {"percent": report.percent, "verdict": check.verdict.value, "reason": check.reason,
            "status": check.status, "latency_ms": round(check.latency_ms, 1) if check.latency_ms is not None else None}
