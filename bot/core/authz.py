"""Who may do what: one rule per interaction, in one table a reviewer can read (RULES), evaluated at click time by
immutable user ID through the RoleDirectory (roster, user groups, this incident's overrides).

Every Bolt action, view submission, shortcut and `/rollback` subcommand the app registers has a row here; the Bolt
middleware in handlers/authz.py refuses any interaction without one, and the engine entry points the handlers call
check their row with `require` before they change anything. A refusal changes nothing but the timeline (a
`*_refused` event naming the interaction) and says who can do it instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn

from bot.core import timeline
from bot.core.errors import Refused
from bot.core.services import Services
from bot.slack.blocks import mentions


class Party(Enum):
    ANYONE = "anyone"
    STEP_OWNER = "the step's owner role"
    INCIDENT_LEAD = "the runbook's incident lead roles"
    TEMPLATE_ROLE = "the comms template's approver role"
    POLICY_ROLES = "the roles of the request's approval policy"
    REQUESTER = "the person who requested the action"
    SCENARIO_OWNER = "the scenario's owner role"
    VALIDATION_OWNER = "the validation checklist's owner role"
    PAGED = "the person the page was sent to"


@dataclass(frozen=True)
class Rule:
    who: tuple[Party, ...]
    what: str  # for the refusal: "Only the <titles> can <what>"
    requester_excluded: bool = False  # four eyes: the requester never counts as an approver
    audit: str = "interaction_refused"  # the timeline kind of a refused attempt


P = Party
STEP = (P.STEP_OWNER, P.INCIDENT_LEAD)
# interaction -> who may do it. Keys: a Bolt action_id, `view:<callback_id>`, `shortcut:<callback_id>`,
# `/rollback <subcommand>`; `run_action` stands for every `run_action|<task>` button.
RULES: dict[str, Rule] = {
    # step checklists (bot/steps/checklists.py)
    "checklist_tick": Rule(STEP, "tick this step's checklist"),
    "step_done": Rule(STEP, "mark this step done"),
    "step_skip": Rule(STEP, "skip this step"),
    "view:step_skip": Rule(STEP, "skip this step"),
    "incident_status": Rule((P.ANYONE,), "read the status"),
    # the rollback decision (bot/decision/approvals.py)
    "decision_approve": Rule((P.POLICY_ROLES,), "approve the rollback", audit="approval_refused"),
    "decision_decline": Rule((P.POLICY_ROLES,), "decline the rollback", audit="approval_refused"),
    "view:approval_decline": Rule((P.POLICY_ROLES,), "decline this", audit="approval_refused"),
    "decision_level": Rule((P.POLICY_ROLES, P.INCIDENT_LEAD), "change the level or re-open the vote",
                           audit="level_change_refused"),
    "decision_reopen": Rule((P.POLICY_ROLES, P.INCIDENT_LEAD), "change the level or re-open the vote",
                            audit="level_change_refused"),
    # a destructive action's approval: its policy's roles, never its requester
    "action_approve": Rule((P.POLICY_ROLES,), "approve this action", requester_excluded=True,
                           audit="approval_refused"),
    "action_decline": Rule((P.POLICY_ROLES,), "decline this action", requester_excluded=True,
                           audit="approval_refused"),
    "action_confirm": Rule((P.POLICY_ROLES, P.REQUESTER), "type this action's confirmation phrase",
                           audit="confirmation_refused"),
    "view:action_confirm_phrase": Rule((P.POLICY_ROLES, P.REQUESTER), "type this action's confirmation phrase",
                                audit="confirmation_refused"),
    # action runs (bot/executions/service.py, scenario_runner.py)
    "run_action": Rule(STEP, "run this action"),
    "view:run_action": Rule(STEP, "run this action"),
    "execution_cancel": Rule((*STEP, P.REQUESTER), "cancel this run"),
    "execution_retry": Rule(STEP, "retry this run"),
    "execution_skip": Rule(STEP, "skip this run"),
    "traffic_rollback": Rule(STEP, "roll traffic back"),
    "traffic_retry": Rule(STEP, "retry the traffic stage"),
    "traffic_continue": Rule(STEP, "continue the traffic restore"),
    "scenario_run": Rule((P.SCENARIO_OWNER, P.INCIDENT_LEAD), "run the scenario"),
    # comms (bot/comms/service.py): the template's role only
    "comms_approve": Rule((P.TEMPLATE_ROLE,), "approve this draft"),
    "comms_edit": Rule((P.TEMPLATE_ROLE,), "edit this draft"),
    "view:comms_edit": Rule((P.TEMPLATE_ROLE,), "edit this draft"),
    "comms_sent": Rule((P.TEMPLATE_ROLE,), "mark this draft as sent"),
    "comms_approve_sent": Rule((P.TEMPLATE_ROLE,), "approve this draft and mark it sent"),
    # validation and resolution (bot/incidents/resolution.py)
    "validation_tick": Rule((P.VALIDATION_OWNER, P.INCIDENT_LEAD), "tick the validation checklist"),
    "validation_all": Rule((P.VALIDATION_OWNER, P.INCIDENT_LEAD), "confirm the validation checklist"),
    "/rollback resolve": Rule((P.INCIDENT_LEAD,), "resolve the incident"),
    # people
    "/rollback role": Rule((P.INCIDENT_LEAD,), "give someone a role for this incident",
                           audit="role_override_refused"),
    "page_ack": Rule((P.PAGED,), "acknowledge this page"),
    "page_join": Rule((P.ANYONE,), "open the war room"),  # a link button
    # monitoring (bot/alerts/silencing.py, bot/alerts/triage.py)
    "alerts_silence": Rule((P.INCIDENT_LEAD,), "silence this incident's alerts"),
    # every alert resolved (bot/alerts/notes.py): the thread post's two buttons
    "alerts_resolved_validate": Rule((P.INCIDENT_LEAD,), "move the incident to validation"),
    "alerts_resolved_resolve": Rule((P.INCIDENT_LEAD,), "resolve the incident"),
    "outbox_retry": Rule((P.INCIDENT_LEAD,), "retry work that failed"),  # a parked outbox row, back to pending
    "triage_declare": Rule((P.ANYONE,), "declare a rollback"),  # opens the declare form, which anyone may submit
    # anyone may declare, drill, read and annotate: none of these changes the procedure
    "view:declare_incident": Rule((P.ANYONE,), "declare a rollback"),
    "shortcut:timeline_note": Rule((P.ANYONE,), "add a note"),
    "/rollback note": Rule((P.ANYONE,), "add a note"),
    "/rollback timeline": Rule((P.ANYONE,), "read the timeline"),
    "/rollback modal": Rule((P.ANYONE,), "declare a rollback"),
    "/rollback start": Rule((P.ANYONE,), "declare a rollback"),
    "/rollback drill": Rule((P.ANYONE,), "start a drill"),
    "/rollback help": Rule((P.ANYONE,), "read the help"),
    "/rollback list": Rule((P.ANYONE,), "list incidents"),
    "/rollback status": Rule((P.ANYONE,), "read the status"),
    "/rollback contacts": Rule((P.ANYONE,), "read the contacts"),
}
_RUN_ACTION = re.compile(r"^run_action\|")


def interaction_key(kind: str, name: str) -> str:
    """The table key of an incoming interaction: kind is action | view | shortcut | command."""
    if kind == "action":
        return "run_action" if _RUN_ACTION.match(name) else name
    if kind == "command":
        return f"/rollback {name}"
    return f"{kind}:{name}"


@dataclass(frozen=True)
class Subject:
    """What was clicked, as far as the rules need it."""
    incident_id: str
    step_owner: str | None = None
    template_role: str | None = None
    policy_roles: tuple[str, ...] = ()
    requester: str | None = None
    scenario_owner: str | None = None
    validation_owner: str | None = None
    paged: str | None = None


def _roles(svc: Services, rule: Rule, subject: Subject) -> list[str]:
    by_party: dict[Party, list[str | None]] = {
        P.STEP_OWNER: [subject.step_owner], P.INCIDENT_LEAD: list(svc.runbook.incident_lead_roles),
                P.TEMPLATE_ROLE: [subject.template_role], P.POLICY_ROLES: list(subject.policy_roles),
                P.SCENARIO_OWNER: [subject.scenario_owner], P.VALIDATION_OWNER: [subject.validation_owner]}
    return list(dict.fromkeys(r for party in rule.who for r in by_party.get(party, []) if r))


def _people(rule: Rule, subject: Subject) -> list[str]:
    by_party = {P.REQUESTER: subject.requester, P.PAGED: subject.paged}
    return [u for party in rule.who if (u := by_party.get(party))]


async def allowed(svc: Services, interaction: str, user: str, subject: Subject) -> list[str]:
    """The rule's roles `user` holds now (["anyone"] / ["requester"] / ["paged"] for those parties); [] when the
    rule does not allow them. An interaction without a rule allows nobody."""
    rule = RULES.get(interaction)
    if rule is None:
        return []
    if rule.requester_excluded and subject.requester == user:
        return []
    if P.ANYONE in rule.who:
        return ["anyone"]
    roles = _roles(svc, rule, subject)
    held = await svc.roles.roles_of(user, roles, subject.incident_id) if roles else []
    if held:
        return held
    return [p.name.lower() for p in rule.who if p in (P.REQUESTER, P.PAGED) and user in _people(rule, subject)]


async def who_can(svc: Services, interaction: str, subject: Subject) -> str:
    """The people who can do it instead, by role: 'Technical Lead: <@U1>, <@U2>; the requester: <@U3>'."""
    rule = RULES[interaction]
    roles = _roles(svc, rule, subject)
    held = await svc.roles.holders(roles, subject.incident_id) if roles else {}
    parts = []
    for r in roles:
        people = [u for u in held.get(r, []) if not (rule.requester_excluded and u == subject.requester)]
        parts.append(f"{svc.runbook.role(r).title}: {mentions(people)}")
    if subject.requester and P.REQUESTER in rule.who:
        parts.append(f"the requester: <@{subject.requester}>")
    if subject.paged and P.PAGED in rule.who:
        parts.append(f"the person paged: <@{subject.paged}>")
    return "; ".join(parts) or "nobody"


async def require(svc: Services, interaction: str, user: str, subject: Subject, acting: bool = True) -> list[str]:
    """Check `interaction`'s rule for `user` now. Allowed: the roles that allowed it, and (`acting`) the person
    acted: see `acted`. acting=False where the click only opens a form or may turn out to change nothing (the
    caller calls `acted` once it did). Refused: the attempt goes on the timeline (nothing else changes) and
    Refused names who can do it instead."""
    held = await allowed(svc, interaction, user, subject)
    if held:
        if acting:
            await acted(svc, subject.incident_id, user, interaction)
        return held
    await refuse(svc, interaction, user, subject)


async def acted(svc: Services, incident_id: str, user: str, interaction: str) -> None:
    """An authorized act in the incident shows the person is on it: the `acted` event's inline listeners
    acknowledge their pages, before the click is answered."""
    if interaction == "page_ack" or not incident_id:  # the Ack is its own record
        return
    await svc.events.emit("acted", incident_id=incident_id, user=user, interaction=interaction)


async def refuse(svc: Services, interaction: str, user: str, subject: Subject, why: str = "") -> NoReturn:
    """Refuse `user` the interaction: the attempt goes on the timeline (nothing else changes) and Refused names who
    can do it instead. `why` replaces the rule's own reason (e.g. a button clicked away from its message)."""
    rule = RULES.get(interaction)
    if rule is None:
        raise Refused("That is not something Rollbot does.")
    titles = [svc.runbook.role(r).title for r in _roles(svc, rule, subject)]
    titles += ["requester" for p in rule.who if p is P.REQUESTER and subject.requester]
    titles += ["person paged" for p in rule.who if p is P.PAGED and subject.paged]
    who = await who_can(svc, interaction, subject)
    if why:
        text = f"{why} Who can: {who}."  # short: a form shows at most 150 characters of it
    elif rule.requester_excluded and subject.requester == user:
        text = f"You requested this, so another approver must {rule.what.split(' this')[0]} it. {who}."
    else:
        text = f"Only the {' or '.join(dict.fromkeys(titles)) or 'nobody'} can {rule.what}. {who}."
    async with svc.db.session() as session:
        timeline.record(session, subject.incident_id, svc.clock.now(), rule.audit,
                        f"<@{user}> tried to {rule.what} and was refused", actor=user, interaction=interaction,
                        refused=True)
    raise Refused(text)
