"""Read the seed procedure (markdown) into plain structures, so tests compare the runbook with the seed's own
text and numbers rather than with figures copied by hand."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SEED = Path(__file__).resolve().parents[3] / "shared" / "seed" / "emergency-rollback-procedures.md"

CHECKBOX = re.compile(r"^\s*- \[ \] (.*)$")


def plain(text: str) -> str:
    """Markdown emphasis removed: `**Label**: text` -> `Label: text`."""
    return text.replace("**", "").strip()


@dataclass
class SeedStep:
    number: int
    title: str
    owner: str
    window: tuple[float, float]
    tasks: list[tuple[str, list[str]]] = field(default_factory=list)  # (title, items)


@dataclass
class SeedPhase:
    number: int
    title: str
    window: tuple[float, float]
    steps: list[SeedStep] = field(default_factory=list)


@dataclass
class SeedScenario:
    title: str
    trigger: str
    minutes: float
    steps: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Seed:
    phases: list[SeedPhase] = field(default_factory=list)
    triggers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # level -> [(label, text)]
    matrix: list[tuple[str, str, float]] = field(default_factory=list)  # (level, authority, minutes)
    scenarios: list[SeedScenario] = field(default_factory=list)
    validation: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    response_team: list[tuple[str, float]] = field(default_factory=list)
    management: list[tuple[int, str, float]] = field(default_factory=list)
    external: list[tuple[str, str, str, str]] = field(default_factory=list)
    follow_ups: dict[str, list[tuple[str, list[str]]]] = field(default_factory=dict)
    drills: dict[str, list[str]] = field(default_factory=dict)
    scripts: dict[str, list[str]] = field(default_factory=dict)  # script name -> flags
    success_metrics: list[tuple[str, str]] = field(default_factory=list)
    key_success_factors: list[tuple[str, str]] = field(default_factory=list)
    critical_points: list[tuple[str, str]] = field(default_factory=list)


def _window(text: str) -> tuple[float, float]:
    m = re.search(r"\((\d+)-(\d+) minutes\)", text)
    assert m, text
    return float(m.group(1)), float(m.group(2))


def _labelled(item: str) -> tuple[str, str]:
    m = re.match(r"\*\*(.+?)\*\*:\s*(.*)", item)
    assert m, item
    return m.group(1), m.group(2).strip()


def _table_rows(lines: list[str]) -> list[list[str]]:
    rows = []
    for line in lines:
        if line.startswith("|") and not re.match(r"^\|[-| ]+\|$", line):
            rows.append([plain(c) for c in line.strip().strip("|").split("|")])
    return rows[1:]  # without the header


def parse_seed(path: Path = SEED) -> Seed:
    seed = Seed()
    lines = path.read_text(encoding="utf-8").splitlines()
    h2 = h3 = h4 = ""
    section: dict[str, list[str]] = {}  # h3 heading -> its lines (tables, lists)
    phase: SeedPhase | None = None
    step: SeedStep | None = None
    task: tuple[str, list[str]] | None = None
    scenario: SeedScenario | None = None
    in_steps = False
    group: tuple[str, list[str]] | None = None
    for line in lines:
        if line.startswith("## "):
            h2, h3, h4 = line[3:], "", ""
            continue
        if line.startswith("### "):
            h3, h4 = line[4:], ""
            section[h3] = []
            if m := re.match(r"Phase (\d+): (.*?) \(", h3):
                phase = SeedPhase(int(m.group(1)), m.group(2), _window(h3))
                seed.phases.append(phase)
            if m := re.match(r"Scenario \d+: (.*)", h3):
                scenario = SeedScenario(m.group(1), "", 0)
                seed.scenarios.append(scenario)
                in_steps = False
            continue
        if line.startswith("#### "):
            h4 = line[5:]
            if m := re.match(r"Step (\d+): (.*?) \(", h4):
                assert phase is not None
                step = SeedStep(int(m.group(1)), m.group(2), "", _window(h4))
                phase.steps.append(step)
            continue
        if h3:
            section[h3].append(line)
        for script in re.findall(r"\./launch/scripts/([\w.-]+\.sh)", line):
            seed.scripts.setdefault(script, [])
        if re.search(r"(?<![\w-])--[a-z]", line):
            last = next(reversed(seed.scripts))
            seed.scripts[last] += re.findall(r"(?<![\w-])--[a-z][\w-]+", line)
        box = CHECKBOX.match(line)
        if h2.endswith("Emergency Response Framework") and box:
            level = h4.split()[0].lower()
            seed.triggers.setdefault(level, []).append(_labelled(box.group(1)))
        elif h2.endswith("Rollback Execution Procedures") and step is not None:
            if m := re.match(r"\*\*Owner\*\*: (.*)", line):
                step.owner = m.group(1).strip()
            elif m := re.match(r"\d+\. \*\*(.+?)\*\*", line):
                task = (m.group(1), [])
                step.tasks.append(task)
            elif box:
                assert task is not None
                task[1].append(plain(box.group(1)))
        elif h2.endswith("Rollback Scenarios and Procedures") and scenario is not None:
            if m := re.match(r"\*\*Trigger\*\*: (.*)", line):
                scenario.trigger = m.group(1).strip()
            elif m := re.match(r"\*\*Execution Time\*\*: (\d+) minutes", line):
                scenario.minutes = float(m.group(1))
            elif line.startswith("**Steps**"):
                in_steps = True
            elif in_steps and (m := re.match(r"\d+\. (.*) \((\d+) minutes?\)", line)):
                scenario.steps.append((m.group(1), float(m.group(2))))
        elif h2.endswith("Rollback Validation Checklist") and box:
            seed.validation.setdefault(h3, []).append(_labelled(box.group(1)))
        elif h2.endswith("Post-Rollback Procedures"):
            if m := re.match(r"\d+\. \*\*(.+?)\*\*", line):
                group = (m.group(1), [])
                seed.follow_ups.setdefault(h3, []).append(group)
            elif box:
                assert group is not None
                group[1].append(box.group(1).strip())
        elif h2.endswith("Rollback Testing and Validation") and box:
            seed.drills.setdefault(h3, []).append(box.group(1).strip())
        elif h2.endswith("Rollback Procedure Summary"):
            if h3 == "Key Success Factors" and (m := re.match(r"\d+\. (.*)", line)):
                seed.key_success_factors.append(_labelled(m.group(1)))
            elif h3 in ("Critical Points", "Success Metrics") and (m := re.match(r"- (\*\*.*)", line)):
                target = seed.critical_points if h3 == "Critical Points" else seed.success_metrics
                target.append(_labelled(m.group(1)))

    for row in _table_rows(section.get("Rollback Authorization Matrix", [])):
        seed.matrix.append((row[0], row[1], float(row[2].split()[0])))
    for row in _table_rows(section.get("Immediate Response Team", [])):
        seed.response_team.append((row[0], float(row[3].split()[0])))
    for row in _table_rows(section.get("Management Escalation", [])):
        seed.management.append((int(row[0].split()[-1]), row[1], float(re.findall(r"\d+", row[2])[0])))
    for row in _table_rows(section.get("External Support", [])):
        seed.external.append((row[0], row[1], row[2], row[3]))
    return seed
