"""The KVFlow scenarios across fixed-prefix sizes on the sim backend (virtual time).

For each prefix size runs `agentrt bench kvflow`'s workload (single and/or concurrent,
every policy on the same inputs, the issue's other sizes unchanged) on a cost profile
(default: Llama-3-8B on an H100) and records e2e per policy, device hit rates, and the
ratios kvflow over lru / hicache and kvflow / ideal. The device pool always holds the
same number of prefixes (3 for single, 2 for concurrent), so it grows with the prefix:
the question is how the *value* of keeping, reloading and prefetching a prefix changes
with its size. Writes JSON and a plot (matplotlib).

    python -m simulations.kvflow_prefix_sizes [--scenarios single concurrent]
        [--prefixes 1024 2048 4096 8192 16384] [--profile h100-llama3-8b]
        [--json out/kvflow_prefix_sizes.json] [--plot out/kvflow_prefix_sizes.png]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from agentrt.bench.kvflow_bench import run_kvflow_bench
from agentrt.bench.kvflow_cli import DEFAULTS, make_workload
from agentrt.output_files import write_figure
from agentrt.report import write_json

PREFIXES = (1024, 2048, 4096, 8192, 16384)
POLICIES = ("lru", "hicache", "kvflow", "belady", "ideal")


def run_point(scenario: str, prefix: int, profile: str) -> dict[str, Any]:
    sizes = dict(DEFAULTS[(scenario, "sim")], prefix=prefix)
    t0 = time.perf_counter()
    result = run_kvflow_bench(
        make_workload(scenario, sizes),
        backend="sim",
        profile=profile,
        policies=POLICIES,
        device_prefixes=sizes["device_prefixes"],
    )
    p = result["policies"]
    return {
        "scenario": scenario,
        "prefix": prefix,
        "sizes": result["sizes"],
        "e2e_s": {name: row["e2e_s"] for name, row in p.items()},
        "device_hit_rate": {name: row["device_hit_rate"] for name, row in p.items()},
        "kvflow_over_lru": result["kvflow_over_lru"],
        "kvflow_over_hicache": result["kvflow_over_hicache"],
        "kvflow_vs_ideal": result["kvflow_vs_ideal"],
        "kvflow_minus_belady_hit_rate_pp": result["kvflow_minus_belady_hit_rate_pp"],
        "identical_outputs": result["identical_outputs"],
        "wall_s": time.perf_counter() - t0,
    }


def plot(rows: list[dict[str, Any]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted({r["scenario"] for r in rows})
    fig, axes = plt.subplots(1, len(scenarios), figsize=(6.0 * len(scenarios), 4.0))
    axes = [axes] if len(scenarios) == 1 else list(axes)
    for ax, scenario in zip(axes, scenarios, strict=True):
        mine = [r for r in rows if r["scenario"] == scenario]
        xs = [r["prefix"] for r in mine]
        ax.plot(xs, [r["kvflow_over_lru"] for r in mine], "o-", label="kvflow over lru")
        ax.plot(xs, [r["kvflow_over_hicache"] for r in mine], "s-", label="kvflow over hicache")
        ax.plot(xs, [1 / r["kvflow_vs_ideal"] for r in mine], "^:", label="ideal over kvflow")
        ax.axhline(1.0, color="gray", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("fixed prefix (tokens)")
        ax.set_ylabel("e2e speedup (other / kvflow)")
        ax.set_title(scenario)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    write_figure(fig, path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenarios", nargs="*", default=["single", "concurrent"])
    ap.add_argument("--prefixes", type=int, nargs="*", default=list(PREFIXES))
    ap.add_argument("--profile", default="h100-llama3-8b")
    ap.add_argument("--json", default="out/kvflow_prefix_sizes.json")
    ap.add_argument("--plot", default="out/kvflow_prefix_sizes.png")
    args = ap.parse_args()

    rows = []
    print(
        f"{'scenario':>10} {'prefix':>6} {'lru s':>8} {'hicache s':>9} {'kvflow s':>8} "
        f"{'ideal s':>8} {'/lru':>6} {'/hicache':>8} {'kv/ideal':>8} {'hit-belady':>10}"
    )
    for scenario in args.scenarios:
        for prefix in args.prefixes:
            row = run_point(scenario, prefix, args.profile)
            rows.append(row)
            e2e = row["e2e_s"]
            print(
                f"{scenario:>10} {prefix:>6} {e2e['lru']:>8.2f} {e2e['hicache']:>9.2f} "
                f"{e2e['kvflow']:>8.2f} {e2e['ideal']:>8.2f} {row['kvflow_over_lru']:>5.2f}x "
                f"{row['kvflow_over_hicache']:>7.2f}x {row['kvflow_vs_ideal']:>8.3f} "
                f"{row['kvflow_minus_belady_hit_rate_pp']:>+9.1f}pp",
                flush=True,
            )
    write_json(args.json, {"study": "kvflow_prefix_sizes", "profile": args.profile, "rows": rows})
    plot(rows, args.plot, f"KVFlow scenarios across prefix sizes ({args.profile}, sim)")
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
