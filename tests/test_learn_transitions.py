"""`TransitionLearner`: transition counts, delays, confidence and per-workflow STE."""

from __future__ import annotations

import math

import pytest

from agentrt.learn import LearnerConfig, TransitionLearner


def run(learner: TransitionLearner, workflow: str, agents: list[str], t0: float = 0.0) -> float:
    """Requests one after another: start at t, finish at t + 1, next start at t + 3."""
    now = t0
    for agent in agents:
        assert learner.start(workflow, agent, now)
        assert learner.finish(workflow, agent, now + 1)
        now += 3
    learner.end(workflow)
    return now


def test_counts_give_probabilities_with_ends_in_the_denominator():
    learner = TransitionLearner("k")
    for i in range(3):
        run(learner, f"w{i}", ["a", "b"])
    run(learner, "w3", ["a", "c"])
    probs = learner.probabilities()
    assert probs["a"] == {"b": 0.75, "c": 0.25}
    assert probs["b"] == {}  # b always ended the workflow
    assert learner.ends == {"b": 3, "c": 1}
    assert learner.starts == {"a": 4}
    assert learner.observations("a") == 4 and learner.observations("b") == 3


def test_delay_runs_from_the_finish_else_from_the_start():
    learner = TransitionLearner("k")
    learner.start("w", "a", 10.0)
    learner.finish("w", "a", 12.0)
    learner.start("w", "b", 15.0)  # 3 s after a finished
    learner.start("w", "c", 19.0)  # b never finished: still from a's finish, 7 s
    assert learner.edges["a"]["b"].delay.mean == 3.0
    assert learner.edges["a"]["c"].delay.mean == 7.0
    other = TransitionLearner("k")
    other.start("v", "a", 10.0)
    other.start("v", "b", 14.0)  # no finish reported: from a's start
    assert other.edges["a"]["b"].delay.mean == 4.0


def test_a_fan_out_after_a_finish_is_learned_from_the_finished_agent():
    learner = TransitionLearner("k")
    learner.start("w", "a", 0)
    learner.finish("w", "a", 1)
    learner.start("w", "b", 2)
    learner.start("w", "c", 2)
    assert set(learner.edges["a"]) == {"b", "c"}
    assert "b" not in learner.edges


def test_max_per_workflow_counts_loop_iterations():
    learner = TransitionLearner("k")
    run(learner, "w1", ["a", "b", "a", "b", "a", "b", "c"])
    run(learner, "w2", ["a", "b", "a", "b", "c"])
    assert learner.edges["b"]["a"].max_per_workflow == 2
    assert learner.edges["b"]["a"].count == 3
    assert learner.edges["b"]["c"].max_per_workflow == 1


def test_unknown_until_confident_then_ste_from_the_current_position():
    learner = TransitionLearner("k", LearnerConfig(min_observations=3))
    run(learner, "w1", ["a", "b", "c"])
    run(learner, "w2", ["a", "b", "c"])
    learner.start("w", "a", 100)
    assert learner.workflow_ste("w") is None  # 2 transitions out of a
    run(learner, "w3", ["a", "b", "c"])
    assert learner.workflow_ste("w") == {"a": 0, "b": 1.0, "c": 2.0}
    learner.finish("w", "a", 101)  # between requests: a's successors are next
    assert learner.workflow_ste("w") == {"a": math.inf, "b": 1.0, "c": 2.0}
    assert learner.workflow_ste("nope") is None


def test_the_table_follows_new_observations():
    learner = TransitionLearner("k", LearnerConfig(min_observations=1))
    run(learner, "w1", ["a", "b"])
    assert learner.ste_table()["a"]["b"] == 1.0
    run(learner, "w2", ["a", "c", "b"])
    assert learner.ste_table()["a"]["b"] == 1.5
    assert learner.ste_table() is learner.ste_table()  # cached until the next change


def test_parallel_running_agents_are_all_at_zero():
    learner = TransitionLearner("k", LearnerConfig(min_observations=1))
    run(learner, "w1", ["a", "b", "c"])
    learner.start("w", "a", 0)
    learner.finish("w", "a", 1)
    learner.start("w", "b", 2)
    learner.start("w", "c", 2)
    ste = learner.workflow_ste("w")
    assert ste["b"] == 0 and ste["c"] == 0


def test_a_full_kind_ignores_new_agents_and_keeps_learning_the_known_ones():
    learner = TransitionLearner("k", LearnerConfig(max_agents=2, min_observations=1))
    run(learner, "w0", ["b", "a"])
    assert learner.start("w", "a", 0)
    assert not learner.start("w", "x", 1)  # third agent: not learned
    assert learner.start("w", "b", 2)
    assert learner.agents == ["b", "a"]
    assert set(learner.edges["a"]) == {"b"}  # a -> x -> b is learned as a -> b
    assert not learner.finish("w", "x", 3)
    assert learner.finish("w", "b", 3)


def test_finish_of_a_request_not_running_changes_nothing():
    learner = TransitionLearner("k")
    learner.start("w", "a", 0)
    assert not learner.finish("w", "b", 1)
    assert not learner.finish("other", "a", 1)
    assert learner.workflows["w"].running == {"a": 1}


def test_drop_forgets_without_counting_an_end():
    learner = TransitionLearner("k")
    learner.start("w", "a", 0)
    assert learner.drop("w") and not learner.drop("w")
    assert learner.ends == {}
    assert not learner.end("w")


@pytest.mark.parametrize(
    "kwargs",
    [{"min_observations": 0}, {"horizon": True}, {"min_hit_prob": 2.0}, {"alpha": 0}],
)
def test_bad_config_is_a_one_line_error(kwargs):
    with pytest.raises(ValueError) as info:
        LearnerConfig(**kwargs)
    assert "\n" not in str(info.value)


def test_the_table_is_computed_again_after_enough_new_traffic_or_a_new_agent():
    learner = TransitionLearner("k", LearnerConfig(min_observations=1, refresh_growth=0.5))
    for i in range(4):
        run(learner, f"w{i}", ["a", "b"])  # 8 observations: a -> b, b -> end
    table = learner.ste_table()
    run(learner, "w4", ["a", "b", "a", "b"])  # 4 more, 12 < 8 * 1.5: kept
    assert learner.ste_table() is table and table["b"]["a"] == math.inf
    run(learner, "w5", ["a", "b"])  # 14 > 12: computed again
    assert learner.ste_table()["b"]["a"] == 1.0
    table = learner.ste_table()
    learner.start("w6", "c", 100.0)  # a new agent: computed again at once
    assert "c" in learner.ste_table() and learner.ste_table() is not table


def test_with_no_refresh_growth_every_observation_counts_at_once():
    learner = TransitionLearner("k", LearnerConfig(min_observations=1, refresh_growth=0.0))
    run(learner, "w0", ["a", "b"])
    table = learner.ste_table()
    learner.start("w1", "a", 10.0)
    assert learner.ste_table() is table  # a start of a known agent is no transition
    learner.start("w1", "b", 11.0)
    assert learner.ste_table() is not table
