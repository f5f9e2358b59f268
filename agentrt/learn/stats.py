"""`DelayStats`: what is learned about one kind of delay (seconds, >= 0).

It keeps the count, the running mean, an exponentially weighted mean (`ewma`, weight
`alpha` on the newest sample, so it follows drift) and the last `window` samples, from
which `quantile(q)` is read exactly (nearest rank). Memory is bounded by `window`.
`to_dict` / `from_dict` round-trip every field exactly (floats stay floats).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from agentrt.learn.errors import LearnError

DEFAULT_ALPHA = 0.2
DEFAULT_WINDOW = 32


class DelayStats:
    """Count, running mean, EWMA and a window of recent samples of one delay."""

    def __init__(self, alpha: float = DEFAULT_ALPHA, window: int = DEFAULT_WINDOW) -> None:
        if not 0.0 < alpha <= 1.0:
            raise LearnError(f"alpha must be in (0, 1], got {alpha!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise LearnError(f"window must be an int >= 1, got {window!r}")
        self.alpha = alpha
        self.count = 0
        self.mean = 0.0
        self.ewma = 0.0
        self.recent: deque[float] = deque(maxlen=window)

    def add(self, seconds: float) -> None:
        """Record one sample; a negative or non-finite one raises `LearnError`."""
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            raise LearnError(f"a delay must be a finite number of seconds >= 0, got {seconds!r}")
        seconds = float(seconds)
        self.count += 1
        self.mean += (seconds - self.mean) / self.count
        self.ewma = seconds if self.count == 1 else self.ewma + self.alpha * (seconds - self.ewma)
        self.recent.append(seconds)

    def quantile(self, q: float) -> float:
        """The nearest-rank `q`-quantile of the recent samples (0.0 when there are none)."""
        if not 0.0 <= q <= 1.0:
            raise LearnError(f"a quantile must be in [0, 1], got {q!r}")
        if not self.recent:
            return 0.0
        ordered = sorted(self.recent)
        rank = max(1, math.ceil(q * len(ordered)))
        return ordered[rank - 1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.mean,
            "ewma": self.ewma,
            "alpha": self.alpha,
            "window": self.recent.maxlen,
            "recent": list(self.recent),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DelayStats:
        """Inverse of `to_dict` (the document was validated by `learn/schema.py`)."""
        stats = cls(alpha=data["alpha"], window=data["window"])
        stats.count = data["count"]
        stats.mean = float(data["mean"])
        stats.ewma = float(data["ewma"])
        stats.recent.extend(float(x) for x in data["recent"])
        return stats

    @classmethod
    def of(cls, samples: Iterable[float], **kwargs: Any) -> DelayStats:
        stats = cls(**kwargs)
        for sample in samples:
            stats.add(sample)
        return stats

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DelayStats) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"DelayStats(count={self.count}, mean={self.mean:.3g}, ewma={self.ewma:.3g})"
