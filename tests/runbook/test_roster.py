"""The roster maps the runbook's roles to Slack users, user groups and emails, and is refused when it names a
role the runbook does not define or a contact that is not exactly one kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.roster import DEFAULT_ROSTER, Contact, RosterError, load_roster
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook
from bot.runbook.model import Runbook


@pytest.fixture(scope="module")
def runbook() -> Runbook:
    return load_runbook(DEFAULT_RUNBOOK)


def roster_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_roster_covers_every_role_with_the_sandbox_people(runbook: Runbook) -> None:
    roster = load_roster(DEFAULT_ROSTER, runbook)
    assert roster.warnings == []
    assert {r.id for r in runbook.roles} == set(roster.roles)
    assert roster.contacts("technical_lead") == [Contact(user="U100TL01")]
    assert roster.contacts("technical_lead", "secondary") == [Contact(user="U100TL02")]
    assert roster.contacts("devops_lead", "secondary") == [Contact(usergroup="S100DEVOPS")]
    assert roster.contacts("database_admin", "primary") == [Contact(usergroup="S300DBA")]
    assert roster.contacts("ceo") == [Contact(email="cora@bookedbarber.test")]
    assert roster.contacts("board") == [Contact(usergroup="S200BOARD")]
    assert roster.contacts("cto", "secondary") == []
    every_user = {c.user for role in roster.roles for c in roster.all_contacts(role)}
    assert "U900OUT1" not in every_user  # the outsider holds no role


def test_unknown_role_is_refused_naming_its_path(runbook: Runbook, tmp_path: Path) -> None:
    path = roster_file(tmp_path, "roles:\n  technical_lead:\n    primary: [{user: U100TL01}]\n"
                                 "  release_manager:\n    primary: [{user: U100RM01}]\n")
    with pytest.raises(RosterError) as refused:
        load_roster(path, runbook)
    assert len(refused.value.problems) == 1
    problem = refused.value.problems[0]
    assert problem.startswith(f"{path}: roles.release_manager: unknown role 'release_manager'")
    assert problem.endswith("(line 4)")


def test_contact_with_two_kinds_is_refused(runbook: Runbook, tmp_path: Path) -> None:
    path = roster_file(tmp_path, "roles:\n  qa_lead:\n    primary:\n      - {user: U400QA01}\n"
                                 "      - {user: U400QA02, email: qa2@bookedbarber.test}\n")
    with pytest.raises(RosterError) as refused:
        load_roster(path, runbook)
    assert refused.value.problems == [
        f"{path}: roles.qa_lead.primary[1]: a contact is exactly one of user / usergroup / email "
        "(got user, email) (line 5)"]


@pytest.mark.parametrize(("contact", "field"), [
    ("{user: tara}", "user"), ("{usergroup: U100TL01}", "usergroup"), ("{email: not-an-email}", "email")])
def test_malformed_ids_are_refused(runbook: Runbook, tmp_path: Path, contact: str, field: str) -> None:
    path = roster_file(tmp_path, f"roles:\n  cto:\n    primary: [{contact}]\n")
    with pytest.raises(RosterError) as refused:
        load_roster(path, runbook)
    assert refused.value.problems[0].startswith(f"{path}: roles.cto.primary[0].{field}: String should match pattern")


def test_unknown_key_and_empty_file_are_refused(runbook: Runbook, tmp_path: Path) -> None:
    path = roster_file(tmp_path, "roles:\n  cto:\n    primary: [{user: U800CT01}]\n    tertiary: []\n")
    with pytest.raises(RosterError) as refused:
        load_roster(path, runbook)
    assert refused.value.problems == [f"{path}: roles.cto.tertiary: unknown key (line 4)"]
    with pytest.raises(RosterError) as empty:
        load_roster(roster_file(tmp_path, ""), runbook)
    assert "the file is empty" in empty.value.problems[0]


def test_role_nobody_holds_is_allowed_with_a_warning(runbook: Runbook, tmp_path: Path) -> None:
    text = "".join(f"  {r.id}:\n    primary: [{{user: U{i:03d}AAA}}]\n" for i, r in enumerate(runbook.roles)
                   if r.id not in ("board", "qa_lead"))
    path = roster_file(tmp_path, "roles:\n" + text + "  qa_lead: {}\n")
    roster = load_roster(path, runbook)
    assert roster.warnings == [f"{path}: roles.qa_lead: nobody holds the role QA Lead",
                               f"{path}: roles.board: nobody holds the role Board/Investors"]
    assert roster.contacts("board") == []
    assert roster.contacts("qa_lead", "secondary") == []


def test_tier_must_be_primary_or_secondary(runbook: Runbook) -> None:
    roster = load_roster(DEFAULT_ROSTER, runbook)
    with pytest.raises(ValueError, match="tier is primary or secondary"):
        roster.contacts("cto", "tertiary")


SANDBOX_USERS = DEFAULT_ROSTER.parent / "sandbox-workspace.yml"


@pytest.mark.skipif(not SANDBOX_USERS.exists(), reason=f"sandbox workspace not written yet: {SANDBOX_USERS}")
def test_every_roster_contact_exists_in_the_sandbox_workspace(runbook: Runbook) -> None:
    text = SANDBOX_USERS.read_text(encoding="utf-8")
    roster = load_roster(DEFAULT_ROSTER, runbook)
    for role in roster.roles:
        for contact in roster.all_contacts(role):
            value = contact.user or contact.usergroup or contact.email
            assert value in text, f"{role}: {value} is not in {SANDBOX_USERS.name}"
