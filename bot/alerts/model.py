"""The one shape every alert source is reduced to, and the error a malformed payload raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Source = Literal["alertmanager", "grafana", "pagerduty", "datadog", "generic"]
Status = Literal["firing", "resolved"]
SOURCES: tuple[Source, ...] = ("alertmanager", "grafana", "pagerduty", "datadog", "generic")


class AlertParseError(ValueError):
    """A payload that is not the format its endpoint expects.

    `field` is the path inside the payload (e.g. `alerts[1].labels.value`, or `` for the body itself) and
    `problem` says what is wrong with it; `str(error)` joins them, and is safe to send back to the sender.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)

    def to_json(self) -> dict[str, str]:
        """The body of the 400 answer."""
        return {"error": "malformed alert payload", "field": self.field, "detail": self.problem}


@dataclass(frozen=True)
class NormalizedAlert:
    """One alert from one source, in the terms the trigger matcher and the incident engine use.

    `fingerprint` identifies this alert at its source (stable across re-sends and across firing -> resolved),
    so the engine can recognise a repeat; it is unique per source only, so pair it with `source`.
    """

    source: Source
    fingerprint: str
    status: Status
    name: str
    summary: str
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    value: float | None = None
    starts_at: datetime | None = None
    url: str | None = None

    def __hash__(self) -> int:  # the dict fields are not hashable; equal alerts still hash equal
        return hash((self.source, self.fingerprint, self.status, self.name, self.value, self.starts_at))

    @property
    def firing(self) -> bool:
        return self.status == "firing"

    def label(self, key: str) -> str | None:
        """A label, else an annotation of that name (senders put routing hints in either)."""
        if key in self.labels:
            return self.labels[key]
        return self.annotations.get(key)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, for storing the received alert."""
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "status": self.status,
            "name": self.name,
            "summary": self.summary,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "value": self.value,
            "starts_at": self.starts_at.isoformat() if self.starts_at else None,
            "url": self.url,
        }
