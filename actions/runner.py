"""ActionRunner: runs action specs as asyncio tasks, tracked by execution id, cancellable, or dry-run.

It knows nothing of Slack or the store: the caller records state transitions and shows progress through
the `on_line` callback (wrap it in a ProgressThrottle for the thread).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import replace

import httpx

from actions.check import CheckSpec, run_check_action
from actions.http import HttpSpec, run_http
from actions.progress import ProgressSnapshot, ProgressThrottle
from actions.prometheus import PrometheusCheckSpec, run_prometheus_action
from actions.redact import Redactor
from actions.result import ActionResult, Monotonic, OnLine, Outcome, Plan
from actions.shell import ShellSpec, run_shell

__all__ = ["ActionRunner", "ActionSpec", "DuplicateExecution", "ProgressSnapshot", "ProgressThrottle", "plan"]

log = logging.getLogger(__name__)

ActionSpec = ShellSpec | HttpSpec | CheckSpec | PrometheusCheckSpec


class DuplicateExecution(RuntimeError):
    """This runner is already running that execution id."""


def plan(spec: ActionSpec, redactor: Redactor | None = None) -> Plan:
    """Exactly what `spec` would run, secrets redacted."""
    return spec.plan(redactor)


class ActionRunner:
    def __init__(
        self,
        *,
        redactor: Redactor | None = None,
        http_client: httpx.AsyncClient | None = None,
        monotonic: Monotonic = time.monotonic,
    ) -> None:
        self._redactor = redactor or Redactor()  # knows the settings' tokens
        self._client = http_client
        self._own_client = http_client is None
        self._monotonic = monotonic
        self._tasks: dict[str, asyncio.Task[ActionResult]] = {}
        self._cancels: dict[str, asyncio.Event] = {}

    def start(
        self,
        execution_id: str,
        spec: ActionSpec,
        *,
        on_line: OnLine | None = None,
        secrets: Iterable[str] = (),
        dry_run: bool = False,
    ) -> asyncio.Task[ActionResult]:
        """Start `spec` as a task. `secrets` (e.g. the action's secret parameter values) join the redactor.

        Raises DuplicateExecution if `execution_id` is running here already.
        """
        if execution_id in self._tasks:
            raise DuplicateExecution(execution_id)
        redactor = self._redactor.with_secrets(secrets)
        cancel = asyncio.Event()
        coro = self._dry_run(spec, redactor, on_line) if dry_run else self._run(spec, redactor, on_line, cancel)
        task = asyncio.create_task(coro, name=f"action:{execution_id}")
        self._tasks[execution_id] = task
        self._cancels[execution_id] = cancel
        task.add_done_callback(lambda _t: self._forget(execution_id))
        return task

    async def run(
        self,
        execution_id: str,
        spec: ActionSpec,
        *,
        on_line: OnLine | None = None,
        secrets: Iterable[str] = (),
        dry_run: bool = False,
    ) -> ActionResult:
        return await self.start(execution_id, spec, on_line=on_line, secrets=secrets, dry_run=dry_run)

    def cancel(self, execution_id: str) -> bool:
        """Ask a running execution to stop (SIGTERM, then SIGKILL, for shell). False if it is not running here."""
        event = self._cancels.get(execution_id)
        if event is None:
            return False
        event.set()
        return True

    def is_running(self, execution_id: str) -> bool:
        return execution_id in self._tasks

    def running(self) -> list[str]:
        return list(self._tasks)

    async def wait(self, execution_id: str) -> ActionResult | None:
        task = self._tasks.get(execution_id)
        return await task if task is not None else None

    async def shutdown(self) -> None:
        """Cancel everything still running, wait for the process groups to be gone, close the HTTP client."""
        for event in self._cancels.values():
            event.set()
        tasks = list(self._tasks.values())
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def _forget(self, execution_id: str) -> None:
        self._tasks.pop(execution_id, None)
        self._cancels.pop(execution_id, None)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient()
        return self._client

    async def _run(self, spec: ActionSpec, redactor: Redactor, on_line: OnLine | None, cancel: asyncio.Event) -> ActionResult:
        result = await self._execute(spec, redactor, on_line, cancel)
        return replace(result, plan=spec.plan(redactor))  # the record says exactly what ran

    async def _execute(self, spec: ActionSpec, redactor: Redactor, on_line: OnLine | None, cancel: asyncio.Event) -> ActionResult:
        started = self._monotonic()
        try:
            if isinstance(spec, ShellSpec):
                return await run_shell(spec, redactor=redactor, on_line=on_line, cancel=cancel, monotonic=self._monotonic)
            if isinstance(spec, HttpSpec):
                return await run_http(
                    spec,
                    client=self._http(),
                    redactor=redactor,
                    on_line=on_line,
                    cancel=cancel,
                    monotonic=self._monotonic,
                )
            if isinstance(spec, CheckSpec):
                return await run_check_action(
                    spec,
                    client=self._http(),
                    redactor=redactor,
                    on_line=on_line,
                    cancel=cancel,
                    monotonic=self._monotonic,
                )
            if isinstance(spec, PrometheusCheckSpec):
                return await run_prometheus_action(spec, client=self._http(), redactor=redactor, on_line=on_line,
                                                   cancel=cancel, monotonic=self._monotonic)
            raise TypeError(f"not an action spec: {type(spec).__name__}")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug of ours must still end the execution with a result, not leave it "running" forever.
            log.exception("action crashed")
            error = redactor.redact(f"internal error: {type(exc).__name__}: {exc}")
            return ActionResult(Outcome.FAILED, None, self._monotonic() - started, error, error=error)

    async def _dry_run(self, spec: ActionSpec, redactor: Redactor, on_line: OnLine | None) -> ActionResult:
        the_plan = spec.plan(redactor)
        line = f"[rollbot] dry run, would run: {the_plan.command}"
        if on_line is not None:
            try:
                await on_line(line)
            except Exception:  # a broken progress display must not break the action
                log.exception("on_line callback failed")
        return ActionResult(Outcome.DRY_RUN, None, 0.0, line, plan=the_plan)
