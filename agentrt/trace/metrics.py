"""Serving metrics of a replay, in the style of `vllm bench serve`.

TTFT = first token - arrival; TPOT = (finish - first token) / (output tokens - 1); ITL =
gaps between consecutive tokens; E2E = finish - arrival. A request failed when the engine
refused or aborted it or it finished without a token; `failures` counts them by reason.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from agentrt.report import format_table

LATENCIES = {"ttft_ms": "TTFT", "tpot_ms": "TPOT", "itl_ms": "ITL", "e2e_ms": "E2E"}  # key: label


@dataclass
class RequestTiming:
    arrival: float
    token_times: list[float] = field(default_factory=list)
    output_tokens: int = 0
    failed: bool = False
    reason: str | None = None  # why it failed

    @property
    def ttft(self) -> float:
        return self.token_times[0] - self.arrival

    @property
    def e2e(self) -> float:
        return self.token_times[-1] - self.arrival

    @property
    def tpot(self) -> float | None:
        if len(self.token_times) < 2:
            return None
        return (self.token_times[-1] - self.token_times[0]) / (len(self.token_times) - 1)

    @property
    def itls(self) -> list[float]:
        times = self.token_times
        return [b - a for a, b in zip(times, times[1:], strict=False)]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    """mean / p50 / p99 in milliseconds (zeros when empty)."""
    if not values:
        return {"mean": 0.0, "p50": 0.0, "p99": 0.0}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "mean": statistics.fmean(ordered) * 1e3,
        "p50": statistics.median(ordered) * 1e3,
        "p99": p99 * 1e3,
    }


def serving_metrics(timings: Sequence[RequestTiming], duration_s: float) -> dict:
    done = [t for t in timings if not t.failed and t.token_times]
    output_tokens = sum(t.output_tokens for t in done)
    failures = Counter(
        t.reason or ("failed" if t.failed else "finished without an output token")
        for t in timings
        if t.failed or not t.token_times
    )
    return {
        "completed": len(done),
        "failed": len(timings) - len(done),
        "failures": dict(failures.most_common()),
        "duration_s": duration_s,
        "request_throughput": len(done) / duration_s if duration_s else 0.0,
        "output_throughput": output_tokens / duration_s if duration_s else 0.0,
        "ttft_ms": summary_ms([t.ttft for t in done]),
        "tpot_ms": summary_ms([p for t in done if (p := t.tpot) is not None]),
        "itl_ms": summary_ms([gap for t in done for gap in t.itls]),
        "e2e_ms": summary_ms([t.e2e for t in done]),
    }


def format_serving(results: dict[str, dict], baseline: str | None = None) -> str:
    """Policies side by side (one column each), with ratios over `baseline`."""
    names = list(results)
    rows: list[list] = [
        ["Successful requests", *(results[n]["completed"] for n in names)],
        ["Failed requests", *(results[n]["failed"] for n in names)],
    ]
    if all("read" in results[n] for n in names):
        rows.append(["Skipped lines", *(results[n]["skipped"] for n in names)])
        rows.append(["Lines read", *(results[n]["read"] for n in names)])
    rows += [
        ["Duration (s)", *(results[n]["duration_s"] for n in names)],
        ["Request throughput (req/s)", *(results[n]["request_throughput"] for n in names)],
        ["Output throughput (tok/s)", *(results[n]["output_throughput"] for n in names)],
    ]
    for key, label in LATENCIES.items():
        for stat in ("mean", "p50", "p99"):
            rows.append([f"{stat} {label} (ms)", *(results[n][key][stat] for n in names)])
    for key, label in (
        ("device_hit_rate", "Device prefix hit rate"),
        ("host_hit_rate", "Host prefix hit rate"),
        ("recomputed_tokens", "Recomputed prompt tokens"),
    ):
        if all(key in results[n] for n in names):
            rows.append([label, *(results[n][key] for n in names)])
    if baseline is not None and baseline in results:
        base = results[baseline]["duration_s"]
        durations = [results[n]["duration_s"] for n in names]
        speedups = [f"{base / d:.2f}x" if d else "-" for d in durations]
        rows.append([f"Speedup over {baseline}", *speedups])
    return format_table("Serving benchmark result", ["metric", *names], rows)


def format_accounting(results: dict[str, dict], listed: int = 20) -> str:
    """Why requests failed (per policy, by reason with counts) and which lines were
    skipped (the first `listed`; they are the same for every policy), one per line."""
    lines = []
    for name, result in results.items():
        for reason, count in result.get("failures", {}).items():
            lines.append(f"failed ({name}): {count} x {reason}")
        if result.get("truncated"):
            lines.append(
                f"cut short ({name}): {result['truncated']} requests stopped at the engine's "
                "context limit before their recorded output length"
            )
    skipped = next(iter(results.values()), {}).get("skipped_lines", [])
    if skipped:
        lines.append(f"skipped {len(skipped)} line{'s' * (len(skipped) != 1)}:")
        lines += [f"  {s['file']}:{s['line']}: {s['why']}" for s in skipped[:listed]]
        if len(skipped) > listed:
            lines.append(f"  ... and {len(skipped) - listed} more (all of them in --json)")
    return "\n".join(lines)
