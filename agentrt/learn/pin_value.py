"""Whether a tool pause is worth a pin, and for how long (a time-to-live, as Continuum's).

A pin keeps a paused conversation's KV on the device. What it saves: if the conversation
comes back while pinned, it does not reload its evicted KV (recompute it, or load it
from a host tier), `reload_s` seconds on its own critical path. What it costs: while
pinned, its `share` of the device pool (its pages / pool pages) is not available to the
rest of the batch, which has `free = 1 - pinned_share` of the pool besides the other
pins; on an engine whose batch is bounded by KV, the others' work then takes
`free / (free - share)` times as long, `rate = share / (free - share)` seconds lost per
second pinned (no pin when `share >= free`). For a TTL `tau` and the tool's pause `T`
(learned gaps, `samples`):

    gain(tau) = reload_s * P(T <= tau) - rate * E[min(T, tau)]

`pin_ttl` returns the `tau` among the samples of largest positive gain (None: no pin
pays). Both sides are upper bounds: the conversation might have stayed cached unpinned,
and the pool may have free pages or the engine not be KV-bound; what the rule gets right
is the comparison, so a conversation that is cheap to recompute or expected back late
relative to the pool it holds is not pinned, and a pin ends when its return has become
unlikely.

`ReloadRate` is what a prompt token missing on the device costs a request here: the
time to first token of recent requests over the prompt tokens they did not find on the
device (computed, or loaded from a host tier; queueing and the batch's share of each
step included), so `reload_s` is what an evicted conversation would wait.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from agentrt.learn.errors import LearnError

TTL_MARGIN = 1.1  # a TTL a bit past the sample it covers, so that return is inside it


def pin_ttl(
    reload_s: float, share: float, samples: Sequence[float], pinned_share: float = 0.0
) -> float | None:
    """The TTL of largest expected gain among `samples` (seconds), or None when none
    gains (see the module docstring). `share` in (0, 1], `pinned_share` in [0, 1];
    `samples` non-empty."""
    if not reload_s >= 0.0 or not math.isfinite(reload_s):
        raise LearnError(f"reload_s must be a finite number >= 0, got {reload_s!r}")
    if not 0.0 < share <= 1.0:
        raise LearnError(f"share must be in (0, 1], got {share!r}")
    if not 0.0 <= pinned_share <= 1.0:
        raise LearnError(f"pinned_share must be in [0, 1], got {pinned_share!r}")
    free = 1.0 - pinned_share
    if share >= free:
        return None
    rate = share / (free - share)
    ordered = sorted(samples)
    if not ordered or ordered[0] < 0 or not math.isfinite(ordered[-1]):
        raise LearnError(f"samples must be finite seconds >= 0, got {list(samples)!r}")
    n = len(ordered)
    best, best_tau = 0.0, None
    below = 0.0  # sum of the samples up to this one
    for i, tau in enumerate(ordered):
        below += tau
        covered = (i + 1) / n
        held = (below + tau * (n - i - 1)) / n  # E[min(T, tau)]
        gain = reload_s * covered - rate * held
        if gain > best:
            best, best_tau = gain, tau
    return None if best_tau is None else best_tau * TTL_MARGIN


class ReloadRate:
    """Seconds a request waits per prompt token it misses on the device, over its last
    `window` requests that missed at least `min_tokens` (ratio of sums); `default_s`
    before."""

    def __init__(self, default_s: float, window: int = 64, min_tokens: int = 16) -> None:
        if not default_s > 0.0 or not math.isfinite(default_s):
            raise LearnError(f"default_s must be a finite number > 0, got {default_s!r}")
        self.default_s = default_s
        self.min_tokens = min_tokens
        self._recent: deque[tuple[float, int]] = deque(maxlen=window)

    def add(self, ttft_s: float, missed_tokens: int) -> None:
        """A request missed `missed_tokens` prompt tokens on the device and saw its
        first token after `ttft_s`; too small or malformed observations are skipped."""
        if missed_tokens >= self.min_tokens and math.isfinite(ttft_s) and ttft_s > 0:
            self._recent.append((ttft_s, missed_tokens))

    @property
    def per_token_s(self) -> float:
        if not self._recent:
            return self.default_s
        return sum(t for t, _ in self._recent) / sum(n for _, n in self._recent)

    def reload_s(self, tokens: int) -> float:
        return tokens * self.per_token_s
