"""`LearnerConfig`: the knobs every `TransitionLearner` of a registry shares."""

from __future__ import annotations

from dataclasses import dataclass

from agentrt.learn.errors import LearnError
from agentrt.learn.stats import DEFAULT_ALPHA, DEFAULT_WINDOW


@dataclass(frozen=True)
class LearnerConfig:
    """- `min_observations`: transitions (including workflow ends) observed out of an
      agent before its outgoing probabilities are trusted; below it the workflow's
      position is "unknown" and the caller falls back to LRU.
    - `horizon`, `min_hit_prob`: of the expected-steps computation (`learn/hitting.py`).
    - `max_agents`: agents learned per kind; requests of further agents are not learned.
    - `alpha`, `window`: of the per-edge delay statistics (`learn/stats.py`).
    - `refresh_growth`: the expected-steps table (O(A * horizon * E) to compute) is
      computed again once the transitions observed grew by this fraction since the last
      computation, or a new agent appeared; 0 recomputes after every new observation.
    """

    min_observations: int = 3
    horizon: int = 64
    min_hit_prob: float = 0.05
    max_agents: int = 256
    alpha: float = DEFAULT_ALPHA
    window: int = DEFAULT_WINDOW
    refresh_growth: float = 0.1

    def __post_init__(self) -> None:
        _at_least_one("min_observations", self.min_observations)
        _at_least_one("horizon", self.horizon)
        _at_least_one("max_agents", self.max_agents)
        _at_least_one("window", self.window)
        if not 0.0 < self.min_hit_prob <= 1.0:
            raise LearnError(f"min_hit_prob must be in (0, 1], got {self.min_hit_prob!r}")
        if not 0.0 < self.alpha <= 1.0:
            raise LearnError(f"alpha must be in (0, 1], got {self.alpha!r}")
        if not 0.0 <= self.refresh_growth <= 10.0:
            raise LearnError(f"refresh_growth must be in [0, 10], got {self.refresh_growth!r}")


def _at_least_one(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LearnError(f"{name} must be an int >= 1, got {value!r}")
