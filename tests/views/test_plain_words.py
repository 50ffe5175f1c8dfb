"""Text a person reads uses names and plain words: no runbook ids (steps, actions, parameters, roles), no raw
Slack user IDs, no regexes, no internal actor names like `alert:alertmanager`. Checked over what a real incident
posts to the sandbox (header, steps, decision, a gated action's approval and progress), the Run form, and the
contacts list. The demo test applies the same check to every scenario's whole transcript (tests/demo)."""

from __future__ import annotations

from pathlib import Path

from bot.escalation.contacts_view import contacts_text
from bot.executions.views import run_modal
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from handlers.executions import _modal
from handlers.interaction import Click
from tests.decision.test_action_approval import approved_incident_with_a_restore_request
from tests.incidents.test_war_room import PAYMENT_ALERT, post_alert
from tests.support.harness import harness
from tests.support.plain_words import internal_words, offenders

RUNBOOK = load_runbook(DEFAULT_RUNBOOK)


def test_the_check_knows_the_runbooks_internal_ids() -> None:
    words = internal_words(RUNBOOK)
    assert {"s4_rollback_payment_config", "restore_point", "alert:alertmanager", "technical_lead"} <= words
    state = {"channels": [{"name": "c", "messages": [
        {"text": "Step s4_rollback_payment_config by U100TL01", "blocks": []},
        {"text": "fine: <@U100TL01> at <!date^1^{time}|09:00>", "blocks": []}]}]}
    [found] = offenders(state, RUNBOOK)  # the mention and the date token are rendered by Slack as a name/time
    assert "s4_rollback_payment_config" in found and "U100TL01" in found


async def test_an_alert_declared_incident_and_a_gated_restore_read_in_plain_words(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        await post_alert(h, "alertmanager", PAYMENT_ALERT)
        await h.settle()
        header = next(m for c in h.state()["channels"] if c["name"].startswith("inc-") for m in c["messages"]
                      if "Rollback incident" in m["text"])
        assert "an alert from Alertmanager" in str(header["blocks"])
        assert offenders(h.state(), h.bot.svc.runbook) == []

    (tmp_path / "restore").mkdir()
    async with harness(tmp_path / "restore") as h:
        incident, execution, _key = await approved_incident_with_a_restore_request(h)
        assert "Restore point" in str(h.state())  # the parameter by its label, with its value
        assert offenders(h.state(), h.bot.svc.runbook) == []
        ctx = await h.bot.executions.context(incident.id, "application_rollback", "database_rollback_run",
                                             "rollback_database")
        click = Click(user="U500OC01", channel=incident.channel_id, message_ts="1.0", trigger_id="t", action={})
        form = run_modal(_modal(h.bot, ctx, click)).to_dict()
        state = {"views": {"U500OC01": [form]}}
        assert offenders(state, h.bot.svc.runbook) == [], "the Run form: labels and hints, no regex, no ids"
        assert "Restore point" in str(form)


def test_contacts_never_list_a_person_as_their_own_backup_and_say_when_nobody_is_configured() -> None:
    tiers = {r.id: ([], []) for r in RUNBOOK.roles}
    tiers["technical_lead"] = (["U100TL01"], ["U100TL01", "U100TL02"])
    tiers["devops_lead"] = (["U200DO01"], ["U200DO01"])
    text = contacts_text(RUNBOOK, tiers)
    lead = next(line for line in text.splitlines() if line.startswith("• *Technical Lead*"))
    assert lead == f"• *Technical Lead*: <@U100TL01> (backup: <@U100TL02>){lead.split(')', 1)[1]}"
    devops = next(line for line in text.splitlines() if line.startswith("• *DevOps Lead*"))
    assert "backup: none configured" in devops and devops.count("U200DO01") == 1
    nobody = next(line for line in text.splitlines() if line.startswith(f"• *{RUNBOOK.roles[-1].title}*"))
    assert "not configured" in nobody and "_nobody on the roster_" not in nobody
    stripe = next(line for line in text.splitlines() if "*Stripe*" in line)
    assert "not configured" in stripe and "[Emergency Contact]" not in stripe
