"""Stage transitions: every listed move is legal and says what it means; anything else is refused."""

from __future__ import annotations

import pytest

from pipelines.errors import BadInputError, RefusedError
from pipelines.registry import stages
from pipelines.registry.stages import GATED_STAGES, TRANSITIONS, Stage, check_transition, stage_named

SHA = "ab" * 32


@pytest.mark.parametrize(
    ("current", "target"),
    [(current, target) for current, targets in TRANSITIONS.items() for target in targets],
)
def test_every_listed_transition_is_legal_and_says_what_it_means(current: Stage, target: Stage) -> None:
    assert check_transition(current, target, version=SHA)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (Stage.EXPERIMENTAL, Stage.PRODUCTION),
        (Stage.PRODUCTION, Stage.CANDIDATE),
        (Stage.ARCHIVED, Stage.PRODUCTION),
        (Stage.CANDIDATE, Stage.EXPERIMENTAL),
    ],
)
def test_illegal_transitions_are_refused_with_the_legal_ones(current: Stage, target: Stage) -> None:
    with pytest.raises(RefusedError, match=f"cannot move from {current} to {target}") as caught:
        check_transition(current, target, version=SHA)
    assert "legal moves" in caught.value.details[0]


def test_every_stage_is_documented() -> None:
    from tests.documented import documented_members

    assert documented_members(stages.Stage) == {stage.name for stage in Stage}


def test_every_gated_stage_is_reached_by_a_legal_move() -> None:
    """A stage with gates that no transition leads to would be a policy nobody could use."""
    reachable = {target for targets in TRANSITIONS.values() for target in targets}
    assert set(GATED_STAGES) <= reachable
    assert Stage.EXPERIMENTAL not in GATED_STAGES, "registration, not a gate, makes a version experimental"


def test_an_unknown_stage_names_where_it_was_read_and_the_stages() -> None:
    assert stage_named("candidate", where="x") is Stage.CANDIDATE
    with pytest.raises(BadInputError) as caught:
        stage_named("staging", where="model package arn:1 metadata Stage")
    message = caught.value.message
    assert "model package arn:1 metadata Stage" in message and "'staging'" in message
    assert "experimental, candidate, production, archived" in message
