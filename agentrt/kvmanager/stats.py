"""Per-run KV cache statistics (what the benchmark reports per policy)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


@dataclass
class KVStats:
    """Token counts are per admission (a preempted sequence counts again when re-admitted).

    ``device_hit_tokens``: prompt tokens already on device when the request was first
    looked at; ``host_hit_tokens``: tokens it got by loading from host (reactively or by
    waiting on a prefetch); ``recomputed_tokens``: tokens it had to compute.
    ``prefetch_late``: requests that found (part of) their prefix still loading.
    ``load_seconds``: summed time from the start of each successful host->device load to
    when the engine saw it done (on the manager's clock: what a request waiting on it
    waits), for ``loaded_pages``.
    """

    requests: int = 0
    prompt_tokens: int = 0
    device_hit_tokens: int = 0
    host_hit_tokens: int = 0
    recomputed_tokens: int = 0
    loaded_pages: int = 0
    loaded_bytes: int = 0
    load_seconds: float = 0.0
    offloaded_pages: int = 0
    reactive_loads: int = 0
    prefetch_loads: int = 0
    prefetch_cancelled: int = 0
    prefetch_late: int = 0
    failed_loads: int = 0

    def count_admission(self, prompt: int, first: int, matched: int, sign: int = 1) -> None:
        """Count the admission of a ``prompt``-token request that found ``first`` tokens
        on device when first looked at and was given ``matched`` (``sign=-1``: take the
        count back)."""
        self.requests += sign
        self.prompt_tokens += sign * prompt
        self.device_hit_tokens += sign * min(first, matched)
        self.host_hit_tokens += sign * max(0, matched - first)
        self.recomputed_tokens += sign * (prompt - matched)

    @property
    def device_hit_rate(self) -> float:
        return self.device_hit_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def host_hit_rate(self) -> float:
        return self.host_hit_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    def snapshot(self) -> KVStats:
        """A copy, to subtract from later counts."""
        return replace(self)

    def __sub__(self, before: KVStats) -> KVStats:
        """The counts accrued since ``before`` (a `snapshot`)."""
        names = [f.name for f in fields(self)]
        return KVStats(**{n: getattr(self, n) - getattr(before, n) for n in names})

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = dict(asdict(self))
        out["device_hit_rate"] = self.device_hit_rate
        out["host_hit_rate"] = self.host_hit_rate
        return out
