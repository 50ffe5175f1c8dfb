"""The approval policy, evaluated purely: any-of / all-of, one slot per person (a bipartite assignment), the
declarer filling one slot at most, declines ending the vote, and the typed confirmation gating approval."""

from __future__ import annotations

import itertools

import pytest

from bot.decision.policy import Ballot, Policy, evaluate, match
from bot.runbook.loader import DEFAULT_RUNBOOK, load_runbook

TL, DO, PM, DBA = "technical_lead", "devops_lead", "product_manager", "database_admin"
RUNBOOK = load_runbook(DEFAULT_RUNBOOK)


def approve(user: str, *roles: str) -> Ballot:
    return Ballot(user, "approve", frozenset(roles))


def decline(user: str, *roles: str) -> Ballot:
    return Ballot(user, "decline", frozenset(roles))


def test_the_seed_matrix_reads_from_the_runbook_levels() -> None:
    policies = {lv.id: Policy.from_model(lv.approval) for lv in RUNBOOK.levels}
    assert policies["immediate"] == Policy("any_of", (TL, DO))
    assert policies["urgent"] == Policy("all_of", (TL, DO))
    assert policies["consideration"] == Policy("all_of", (TL, PM))
    title = {r.id: r.title for r in RUNBOOK.roles}.__getitem__
    assert policies["immediate"].words(title) == "Technical Lead OR DevOps Lead"
    assert policies["urgent"].words(title) == "Technical Lead + DevOps Lead"
    restore = Policy.from_model(RUNBOOK.action("rollback_database").approval)
    assert restore == Policy("all_of", (TL, DBA))


def test_stored_form_round_trips_and_malformed_policies_are_refused() -> None:
    for policy in (Policy("any_of", (TL, DO)), Policy("all_of", (TL, PM))):
        assert Policy.from_dict(policy.to_dict()) == policy
    for bad in ({}, {"any_of": [TL], "all_of": [DO]}, {"any_of": []}, {"none_of": [TL]}):
        with pytest.raises(ValueError):
            Policy.from_dict(bad)
    with pytest.raises(ValueError):
        Policy("some_of", (TL,))  # type: ignore[arg-type]


@pytest.mark.parametrize("role", [TL, DO])
def test_any_of_one_holder_of_either_role_approves(role: str) -> None:
    outcome = evaluate(Policy("any_of", (TL, DO)), [approve("U1", role)])
    assert outcome.status == "approved" and outcome.slots == {role: "U1"} and outcome.missing == ()


def test_a_ballot_without_a_policy_role_counts_for_nothing() -> None:
    outcome = evaluate(Policy("any_of", (TL, DO)), [approve("U900OUT1"), approve("U700PM01", PM)])
    assert outcome.status == "pending" and outcome.missing == (TL, DO)
    declined = evaluate(Policy("all_of", (TL, DO)), [decline("U700PM01", PM)])
    assert declined.status == "pending", "a decline by someone without a policy role does not end the vote"


def test_all_of_needs_a_different_person_for_each_role() -> None:
    policy = Policy("all_of", (TL, DO))
    both = evaluate(policy, [approve("U1", TL, DO)])
    assert both.status == "pending" and len(both.slots) == 1 and len(both.missing) == 1
    assert evaluate(policy, [approve("U1", TL), approve("U2", DO)]).status == "approved"
    assert evaluate(policy, [approve("U1", TL), approve("U2", TL)]).status == "pending"


def test_the_assignment_moves_a_two_role_holder_to_the_slot_nobody_else_can_fill() -> None:
    """U1 holds both roles and voted first; U2 holds only TL. A greedy fill would give U1 the TL slot and
    leave DevOps empty; the matching gives U1 DevOps and U2 TL."""
    outcome = evaluate(Policy("all_of", (TL, DO)), [approve("U1", TL, DO), approve("U2", TL)])
    assert outcome.status == "approved" and outcome.slots == {TL: "U2", DO: "U1"}


def test_a_decline_by_an_authorized_person_ends_the_vote() -> None:
    policy = Policy("all_of", (TL, DO))
    outcome = evaluate(policy, [approve("U1", TL), decline("U2", DO)])
    assert outcome.status == "declined" and outcome.decliner == "U2"
    assert evaluate(Policy("any_of", (TL, DO)), [decline("U2", DO), approve("U1", TL)]).status == "declined"


def test_an_action_waits_for_its_typed_confirmation_even_with_every_vote_in() -> None:
    policy = Policy("all_of", (TL, DBA))
    ballots = [approve("U100TL01", TL), approve("U300DB01", DBA)]
    waiting = evaluate(policy, ballots, confirmed=False)
    assert waiting.status == "pending" and waiting.satisfied and waiting.missing == ()
    assert evaluate(policy, ballots, confirmed=True).status == "approved"
    assert evaluate(policy, [decline("U300DB01", DBA)], confirmed=True).status == "declined"


def test_duplicate_ballots_of_one_person_fill_one_slot() -> None:
    ballots = [approve("U1", TL), approve("U1", DO)]  # the store forbids it; the policy does not rely on that
    assert evaluate(Policy("all_of", (TL, DO)), ballots).status == "pending"


ROLES = (TL, DO, PM)
HOLDINGS = [frozenset(c) for n in range(len(ROLES) + 1) for c in itertools.combinations(ROLES, n)]


def brute_force(policy: Policy, ballots: list[Ballot]) -> bool:
    """Approved iff some injective map from the policy's roles to approving voters holding them exists."""
    voters = [b for b in ballots if b.vote == "approve"]
    if policy.kind == "any_of":
        return any(set(policy.roles) & b.roles for b in voters)
    return any(all(r in v.roles for r, v in zip(policy.roles, chosen, strict=True))
               for chosen in itertools.permutations(voters, len(policy.roles)))


@pytest.mark.parametrize("kind", ["any_of", "all_of"])
@pytest.mark.parametrize("size", [1, 2, 3])
def test_exhaustively_against_brute_force_for_up_to_three_voters(kind: str, size: int) -> None:
    """Every holding of up to three roles by up to three approvers, for every policy over 1-3 roles."""
    checked = 0
    for roles in itertools.combinations(ROLES, size):
        policy = Policy(kind, roles)  # type: ignore[arg-type]
        for voters in range(4):
            for holdings in itertools.product(HOLDINGS, repeat=voters):
                ballots = [Ballot(f"U{i}", "approve", h) for i, h in enumerate(holdings)]
                outcome = evaluate(policy, ballots)
                assert (outcome.status == "approved") == brute_force(policy, ballots), (policy, holdings)
                assert len(set(outcome.slots.values())) == len(outcome.slots), "one slot per person"
                assert all(role in next(b.roles for b in ballots if b.user == user)
                           for role, user in outcome.slots.items()), "a slot goes to a holder of its role"
                checked += 1
    assert checked > 100


@pytest.mark.parametrize("holding", HOLDINGS)
def test_the_declarer_alone_never_satisfies_a_two_role_all_of(holding: frozenset[str]) -> None:
    for roles in itertools.combinations(ROLES, 2):
        outcome = evaluate(Policy("all_of", roles), [approve("U_DECLARER", *holding)])
        assert outcome.status == "pending" and len(outcome.slots) <= 1


def test_match_is_a_maximum_assignment() -> None:
    assert match([TL, DO, PM], {"A": [TL, DO], "B": [TL], "C": [DO, PM]}) == {TL: "B", DO: "A", PM: "C"}
    assert len(match([TL, DO], {"A": [TL], "B": [TL]})) == 1
    assert match([TL], {}) == {}
