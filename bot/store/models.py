"""The tables. The database is the source of truth: every state change lands here before Slack is told.

Exactly-once effects rest on the unique constraints below and on conditional UPDATEs in the services.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.types import UTCDateTime


def _when(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_type=UTCDateTime, nullable=nullable, index=index)


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: str = Field(primary_key=True, max_length=64)
    title: str
    runbook: str
    trigger_id: str | None = None
    level: str
    scenario_id: str | None = None
    status: str = Field(default="open", index=True)  # declaring (an alert's, for ms) | open | resolved | cancelled
    stage: str = "deciding"  # deciding | declined | rolling_back | validating | stabilizing | resolved
    phase_id: str | None = None
    is_drill: bool = False
    declared_by: str
    declared_at: datetime = Field(sa_type=UTCDateTime)
    decision: str | None = None  # approved | declined
    decided_at: datetime | None = _when()
    rollback_started_at: datetime | None = _when()
    rollback_completed_at: datetime | None = _when()
    resolved_at: datetime | None = _when()
    resolved_by: str | None = None
    version: str | None = None
    description: str = ""
    evidence: str = ""
    channel_id: str | None = None
    channel_name: str | None = None
    origin_channel_id: str | None = None
    # Set while open: a second incident for the same trigger collides here (NULLs never collide).
    dedup_key: str | None = Field(default=None, unique=True)
    data: dict[str, Any] = _json()


class TimelineEvent(SQLModel, table=True):
    __tablename__ = "timeline_events"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    at: datetime = Field(sa_type=UTCDateTime)
    kind: str
    actor: str | None = None
    text: str = Field(sa_type=Text)
    data: dict[str, Any] = _json()


class StepState(SQLModel, table=True):
    __tablename__ = "step_states"
    __table_args__ = (UniqueConstraint("incident_id", "step_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    step_id: str
    status: str = "pending"  # pending | active | done | skipped
    started_at: datetime | None = _when()
    completed_at: datetime | None = _when()
    completed_by: str | None = None
    reason: str | None = None


class ChecklistItemState(SQLModel, table=True):
    __tablename__ = "checklist_items"
    __table_args__ = (UniqueConstraint("incident_id", "step_id", "item_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    step_id: str
    item_id: str
    checked: bool = False
    by: str | None = None
    at: datetime | None = _when()


class ApprovalRequest(SQLModel, table=True):
    __tablename__ = "approval_requests"
    __table_args__ = (UniqueConstraint("incident_id", "subject"),)

    id: str = Field(primary_key=True, max_length=64)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    subject: str  # "rollback" or "execution:<id>"
    policy: dict[str, Any] = _json()  # {"any_of": [...]} or {"all_of": [...]}
    status: str = "pending"  # pending | approved | declined | expired
    requested_by: str
    requested_at: datetime = Field(sa_type=UTCDateTime)
    deadline_at: datetime | None = _when()
    decided_at: datetime | None = _when()
    reason: str | None = None


class Vote(SQLModel, table=True):
    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("request_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(foreign_key="approval_requests.id", index=True)
    user_id: str
    vote: str  # approve | decline
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    at: datetime = Field(sa_type=UTCDateTime)
    reason: str | None = None


class Execution(SQLModel, table=True):
    __tablename__ = "executions"

    id: str = Field(primary_key=True, max_length=64)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    step_id: str
    task_id: str | None = None
    action_id: str
    attempt: int = 1
    # incident:step:action:attempt — a double click or a second replica inserts it once.
    idempotency_key: str = Field(unique=True)
    state: str = Field(default="requested", index=True)
    dry_run: bool = False
    requested_by: str
    requested_at: datetime = Field(sa_type=UTCDateTime)
    params: dict[str, Any] = _json()
    argv: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    started_at: datetime | None = _when()
    finished_at: datetime | None = _when()
    exit_code: int | None = None
    duration_s: float | None = None
    output: str = Field(default="", sa_type=Text)
    truncated: bool = False
    detail: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = _when()
    cancel_requested_by: str | None = None  # Cancel may land on any replica; the lease holder acts on it
    data: dict[str, Any] = _json()  # typed values for a retry, traffic stages and their checks


class Timer(SQLModel, table=True):
    __tablename__ = "timers"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str | None = Field(default=None, foreign_key="incidents.id", index=True)
    key: str = Field(unique=True)  # scheduling the same timer twice is a no-op
    kind: str
    due_at: datetime = Field(sa_type=UTCDateTime, index=True)
    status: str = Field(default="pending", index=True)  # pending | claimed | fired | cancelled | failed
    claimed_by: str | None = None
    fired_at: datetime | None = _when()  # while 'claimed': when it was claimed (a stale claim is taken again)
    attempts: int = 0  # a handler that failed is retried with backoff, then marked failed
    last_error: str | None = None
    payload: dict[str, Any] = _json()


class SlackMessage(SQLModel, table=True):
    __tablename__ = "slack_messages"
    __table_args__ = (UniqueConstraint("incident_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    key: str  # "header", "step:<id>", "execution:<id>" ...
    channel: str
    ts: str
    thread_ts: str | None = None


class ReceivedAlert(SQLModel, table=True):
    __tablename__ = "received_alerts"

    id: int | None = Field(default=None, primary_key=True)
    source: str
    fingerprint: str = Field(index=True)
    status: str
    name: str
    received_at: datetime = Field(sa_type=UTCDateTime)
    trigger_id: str | None = None
    incident_id: str | None = Field(default=None, foreign_key="incidents.id", index=True)
    outcome: str  # opened | attached (new in the group) | fired_again | resolved_noted | unmatched | refused
    payload: dict[str, Any] = _json()
    # A change of an incident's alert (new in the group, fired or resolved) owed its timeline line: the
    # `alert_notes` timer writes the lines in batches after the webhook's answer.
    note_pending: bool = False


class IncidentAlert(SQLModel, table=True):
    """One alert of an incident, by fingerprint: its current state. A repeat notification changes nothing here."""

    __tablename__ = "incident_alerts"
    # (source, fingerprint) leads: the repeat's one indexed read looks it up by those.
    __table_args__ = (UniqueConstraint("source", "fingerprint", "incident_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    source: str
    fingerprint: str
    name: str
    status: str  # firing | resolved
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    changed_at: datetime = Field(sa_type=UTCDateTime)  # when it last fired or resolved
    payload: dict[str, Any] = _json()  # the latest change's normalised alert


class Page(SQLModel, table=True):
    __tablename__ = "pages"
    __table_args__ = (UniqueConstraint("incident_id", "role", "user_id", "tier"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    role: str
    user_id: str
    tier: str  # primary | secondary | management
    sent_at: datetime = Field(sa_type=UTCDateTime)
    acked_at: datetime | None = _when()
    channel: str | None = None
    ts: str | None = None


class CommsDraft(SQLModel, table=True):
    __tablename__ = "comms_drafts"
    __table_args__ = (UniqueConstraint("incident_id", "template_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    template_id: str
    text: str = Field(sa_type=Text)
    status: str = "draft"  # draft | approved | sent
    drafted_at: datetime = Field(sa_type=UTCDateTime)
    approved_by: str | None = None
    approved_at: datetime | None = _when()
    sent_by: str | None = None
    sent_at: datetime | None = _when()
    edited_by: str | None = None


class RoleOverride(SQLModel, table=True):
    __tablename__ = "role_overrides"
    __table_args__ = (UniqueConstraint("incident_id", "role", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    role: str
    user_id: str
    set_by: str
    at: datetime = Field(sa_type=UTCDateTime)


class ConfirmationChallenge(SQLModel, table=True):
    __tablename__ = "confirmation_challenges"

    id: str = Field(primary_key=True, max_length=64)
    incident_id: str = Field(foreign_key="incidents.id", index=True)
    subject: str
    user_id: str
    phrase_sha256: str
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = _when()


class Claim(SQLModel, table=True):
    """A key claimed once, ever: Events API deliveries, scheduled drill runs, one-shot effects."""

    __tablename__ = "claims"

    key: str = Field(primary_key=True, max_length=255)
    owner: str
    at: datetime = Field(sa_type=UTCDateTime)
