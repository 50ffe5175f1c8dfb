"""Run one argument vector as a subprocess: own process group, scrubbed environment, timeout, cancel.

Never a shell: the argv goes straight to exec. Timeout and Cancel send SIGTERM to the whole process group,
then SIGKILL after a grace period, so children and grandchildren go too; background processes a script
leaves behind after it exits are stopped the same way. Output (stdout and stderr merged) is read in large
chunks, split into lines once per chunk, redacted a chunk at a time, handed to `on_line` line by line in order
and kept in a capped buffer; the reader yields to the event loop after each chunk, so an action printing as fast
as a pipe goes cannot starve the bot's other work (acks, timers).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import shlex
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from actions.output import DEFAULT_MAX_OUTPUT_BYTES, OutputBuffer
from actions.redact import LineRedactor, Redactor
from actions.result import ActionResult, Monotonic, OnLine, Outcome, Plan

log = logging.getLogger(__name__)

# Parent variables an action may see. Everything else (the bot's tokens, database URL, ...) stays behind.
DEFAULT_ENV_ALLOWLIST: tuple[str, ...] = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "USER",
    "LOGNAME",
    "TERM",
)
# The sample scripts' demo knobs (speed, forced failure, forced hang): harmless, and the demo sets them
# on the bot process, so they pass through.
SCRIPT_KNOBS: tuple[str, ...] = ("ROLLBOT_SCRIPT_SPEED", "ROLLBOT_FAIL", "ROLLBOT_HANG")

DEFAULT_KILL_GRACE_S = 5.0
MAX_LINE_BYTES = 16 * 1024  # longer lines are split so one runaway line cannot exhaust memory
# Output is read up to this much at a time: big enough that per-chunk costs vanish, small enough that one
# chunk's work (~1 ms) keeps the event loop responsive between chunks.
READ_CHUNK_BYTES = 16 * 1024
# All actions' output work together gets at most this share of the event loop; the rest is for acks, timers and
# Slack. A faster writer just blocks on its full pipe (nothing is lost): 15 % is still ~15,000 lines a second
# on a busy 2-core machine, far beyond what anyone reads.
OUTPUT_LOOP_SHARE = 0.15
_MAX_PAUSE_S = 0.25  # an on_line callback that waits (Slack) counts as work; never pause longer than this
NOTE_PREFIX = "[rollbot]"
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_POLL_S = 0.02
_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
_DRAIN_S = 2.0


@dataclass(frozen=True)
class ShellSpec:
    argv: tuple[str, ...]
    cwd: str | Path | None = None
    env: Mapping[str, str] = field(default_factory=dict)  # added on top of the allowlisted parent variables
    timeout_s: float = 300.0
    kill_grace_s: float = DEFAULT_KILL_GRACE_S
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    env_allowlist: tuple[str, ...] = DEFAULT_ENV_ALLOWLIST + SCRIPT_KNOBS

    def __post_init__(self) -> None:
        object.__setattr__(self, "argv", tuple(self.argv))
        if not self.argv or not all(isinstance(a, str) for a in self.argv):
            raise ValueError("argv must be a non-empty list of strings")
        if any("\x00" in a for a in self.argv):
            raise ValueError("argv may not contain NUL bytes")
        for name, value in self.env.items():
            if not _ENV_NAME_RE.fullmatch(name) or "\x00" in value:
                raise ValueError(f"invalid environment variable {name!r}")
        if self.timeout_s <= 0 or self.kill_grace_s < 0:
            raise ValueError("timeout_s must be positive and kill_grace_s not negative")

    def plan(self, redactor: Redactor | None = None) -> Plan:
        """What this spec would run, for a dry run: the exact argv, cwd and the names of the variables set."""
        redact = (redactor or Redactor()).redact
        argv = [redact(a) for a in self.argv]
        return Plan(
            kind="shell",
            command=shlex.join(argv),  # quoted for reading only; execution never goes through a shell
            details={
                "argv": argv,
                "cwd": str(self.cwd) if self.cwd is not None else None,
                "env": sorted(self.env),
                "timeout_s": self.timeout_s,
            },
        )


def build_env(
    extra: Mapping[str, str],
    *,
    parent: Mapping[str, str] | None = None,
    allowlist: tuple[str, ...] = DEFAULT_ENV_ALLOWLIST + SCRIPT_KNOBS,
) -> dict[str, str]:
    parent = os.environ if parent is None else parent
    env = {k: parent[k] for k in allowlist if k in parent}
    env.update(extra)
    return env


async def run_shell(
    spec: ShellSpec,
    *,
    redactor: Redactor | None = None,
    on_line: OnLine | None = None,
    cancel: asyncio.Event | None = None,
    monotonic: Monotonic = time.monotonic,
) -> ActionResult:
    """Run `spec` to the end (or timeout, or until `cancel` is set) and return its result."""
    started = monotonic()
    buffer = OutputBuffer(spec.max_output_bytes)
    sink = _LineSink(buffer, (redactor or Redactor()).stream(), on_line)
    try:
        proc, exited = await _spawn(spec)
    except OSError as exc:
        error = f"cannot start {spec.argv[0]}: {exc.strerror or exc}"
        await sink.note(error)
        return ActionResult(Outcome.FAILED, None, monotonic() - started, buffer.text(), error=error)

    pgid = proc.pid
    assert proc.stdout is not None
    reader = asyncio.create_task(_pump(proc.stdout, sink))
    waiter = asyncio.create_task(exited.wait())
    canceller = asyncio.create_task(cancel.wait()) if cancel is not None else None
    try:
        watched = {waiter} if canceller is None else {waiter, canceller}
        done, _ = await asyncio.wait(watched, timeout=spec.timeout_s, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            outcome = Outcome.SUCCEEDED if proc.returncode == 0 else Outcome.FAILED
        elif canceller is not None and canceller in done:
            outcome = Outcome.CANCELLED
            await sink.note("cancelled: stopping the process group")
        else:
            outcome = Outcome.TIMED_OUT
            await sink.note(f"timed out after {spec.timeout_s:g}s: stopping the process group")
        stopped = await stop_group(proc, pgid, spec.kill_grace_s)
        if stopped and outcome in (Outcome.SUCCEEDED, Outcome.FAILED):
            await sink.note(f"stopped background processes left behind ({stopped})")
        elif stopped:
            await sink.note(f"process group stopped ({stopped})")
        await _drain(reader, sink)
    except asyncio.CancelledError:
        # Our own task was cancelled (shutdown): the process tree must not outlive us.
        try:
            await stop_group(proc, pgid, spec.kill_grace_s)
        finally:
            if group_has_live_members(pgid, leader=proc.pid):  # only while the id is still this group's
                _signal_group(pgid, signal.SIGKILL)
            reader.cancel()
        raise
    finally:
        waiter.cancel()
        if canceller is not None:
            canceller.cancel()
    return ActionResult(
        outcome=outcome,
        exit_code=proc.returncode,  # negative: killed by that signal number
        duration_s=monotonic() - started,
        output=buffer.text(),
        truncated=buffer.truncated,
        pid=proc.pid,
    )


async def stop_group(proc: asyncio.subprocess.Process, pgid: int, grace_s: float) -> str:
    """Make sure nothing of the group is left: SIGTERM, wait up to `grace_s`, then SIGKILL.

    Returns which signals were needed ("" when the group had already ended by itself).
    """
    if await _group_gone(proc, pgid, 0):
        return ""
    _signal_group(pgid, signal.SIGTERM)
    if await _group_gone(proc, pgid, grace_s):
        return "SIGTERM"
    _signal_group(pgid, signal.SIGKILL)
    if not await _group_gone(proc, pgid, 5.0):  # SIGKILL cannot be refused; this is a stuck kernel state
        log.error("process group %d still has members after SIGKILL", pgid)
    return f"SIGTERM, then SIGKILL after {grace_s:g}s"


class _ExitAwareProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The protocol create_subprocess_exec uses, plus an event set the moment the child exits.

    Process.wait() is not enough: on Python 3.11 it also waits for the output pipe to close, which a
    background grandchild holding stdout would delay for as long as it lives.
    """

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=limit, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


async def _spawn(spec: ShellSpec) -> tuple[asyncio.subprocess.Process, asyncio.Event]:
    # Mirrors asyncio.create_subprocess_exec, keeping a handle on the protocol's exit event.
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.subprocess_exec(
        lambda: _ExitAwareProtocol(limit=READ_CHUNK_BYTES, loop=loop),
        *spec.argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=spec.cwd,
        env=build_env(spec.env, allowlist=spec.env_allowlist),
        start_new_session=True,  # own session, so own process group: pgid == pid
    )
    return asyncio.subprocess.Process(transport, protocol, loop), protocol.exited


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _group_gone(proc: asyncio.subprocess.Process, pgid: int, within_s: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        if proc.returncode is not None and not group_has_live_members(pgid, leader=proc.pid):
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(_POLL_S)


def group_has_live_members(pgid: int, *, leader: int | None = None) -> bool:
    """True while any process of group `pgid` is alive.

    Zombies count as gone (they are dead, only unreaped). Zombies re-parented to us, which happens when
    `enable_subreaper()` is on, are reaped here; `leader` is skipped because asyncio reaps it.
    """
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # not Linux: ask the kernel, zombies included
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    me = os.getpid()
    alive = False
    for entry in os.scandir(proc_dir):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue  # exited while we looked
        # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) < 3 or int(fields[2]) != pgid:
            continue
        pid = int(entry.name)
        if fields[0] != b"Z":
            alive = True
        elif int(fields[1]) == me and pid != leader:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
    return alive


def enable_subreaper(enabled: bool = True) -> bool:
    """Linux: make this process the reaper of its orphaned descendants (PR_SET_CHILD_SUBREAPER).

    A script's grandchildren outlive it only as orphans; by default they go to PID 1, which in some
    containers never reaps them and zombies pile up. With this on (call once at bot start), they come to
    us and run_shell reaps them with the rest of the group. Returns False where unsupported.
    """
    if sys.platform != "linux":
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(_PR_SET_CHILD_SUBREAPER, int(enabled), 0, 0, 0) == 0


class _LineSink:
    """Where output lines go: redaction first (a batch at a time), then the buffer and the callback, in order."""

    def __init__(self, buffer: OutputBuffer, redact: LineRedactor, on_line: OnLine | None) -> None:
        self.buffer = buffer
        self._redact = redact
        self._on_line = on_line

    async def lines(self, raw: list[bytes], *, has_cr: bool = True) -> None:
        texts = [line.decode("utf-8", errors="replace") for line in raw]
        if has_cr:
            texts = [text.rstrip("\r") for text in texts]
        for text in self._redact.lines(texts):
            await self._emit(text)

    async def note(self, message: str) -> None:
        await self._emit(f"{NOTE_PREFIX} {message}")

    async def _emit(self, text: str) -> None:
        self.buffer.add(text)
        if self._on_line is not None:
            try:
                await self._on_line(text)
            except Exception:  # a broken progress display must not break the action
                log.exception("on_line callback failed")


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines of `data` (each at most MAX_LINE_BYTES, longer ones cut) and the unfinished rest.

    One split per chunk rather than a find and a re-copy of the buffer per line.
    """
    end = data.rfind(b"\n")
    if end < 0:
        lines, rest = [], data
    else:
        lines, rest = data[:end].split(b"\n"), data[end + 1 :]
        if end > MAX_LINE_BYTES and max(map(len, lines)) > MAX_LINE_BYTES:
            lines = [line[i : i + MAX_LINE_BYTES] for line in lines for i in range(0, len(line) or 1, MAX_LINE_BYTES)]
    while len(rest) >= MAX_LINE_BYTES:  # a runaway line with no newline yet: hand on what fills a line
        lines.append(rest[:MAX_LINE_BYTES])
        rest = rest[MAX_LINE_BYTES:]
    return lines, rest


class OutputPacer:
    """Paces the output readers of every action in one event loop so that together they use at most `share`.

    After a chunk that took `work_s`, the next chunk (of any action) may start only once the loop has had
    `work_s * (1 - share) / share` for everything else. The readers always yield between chunks, even
    when no pause is due: read() returns at once while the pipe holds data, so a chatty action would
    otherwise never let go of the loop.
    """

    def __init__(self, share: float = OUTPUT_LOOP_SHARE) -> None:
        if not 0 < share <= 1:
            raise ValueError("share must be in (0, 1]")
        self.share = share
        self._next_start = 0.0

    async def after_chunk(self, work_s: float) -> None:
        now = asyncio.get_running_loop().time()
        rest = min(work_s * (1 - self.share) / self.share, _MAX_PAUSE_S)
        self._next_start = max(self._next_start, now) + rest
        await asyncio.sleep(min(self._next_start - now, _MAX_PAUSE_S * 4))


_pacers: dict[asyncio.AbstractEventLoop, OutputPacer] = {}


def _loop_pacer() -> OutputPacer:
    loop = asyncio.get_running_loop()
    pacer = _pacers.get(loop)
    if pacer is None:
        for old in [old for old in _pacers if old.is_closed()]:
            del _pacers[old]
        pacer = _pacers[loop] = OutputPacer()
    return pacer


async def _pump(stream: asyncio.StreamReader, sink: _LineSink) -> None:
    pacer = _loop_pacer()
    pending = b""  # at most one unfinished line (< MAX_LINE_BYTES), so joining it to a chunk stays cheap
    while chunk := await stream.read(READ_CHUNK_BYTES):
        started = time.perf_counter()
        data = pending + chunk if pending else chunk
        lines, pending = split_lines(data)
        await sink.lines(lines, has_cr=b"\r" in data)
        await pacer.after_chunk(time.perf_counter() - started)
    if pending:
        await sink.lines([pending])


async def _drain(reader: asyncio.Task[None], sink: _LineSink) -> None:
    """Finish reading what the group wrote. A process that left the group (setsid) may hold the pipe open."""
    done, _ = await asyncio.wait({reader}, timeout=_DRAIN_S)
    if reader in done:
        if reader.exception() is not None:
            log.error("reading action output failed", exc_info=reader.exception())
    else:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await sink.note("output still open after the process group ended (a process escaped it); stopped reading")
