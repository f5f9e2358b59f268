"""The AI Metropolis scaling curve on the sim backend (cost model, virtual time).

For each town size (25, 100, 250, 500, 1,000 agents) runs sync, ooo and oracle as a
co-simulation on R replicas of a profile (default: Llama-3-8B on an NVIDIA L4, 8
replicas: the paper's setup) and records virtual makespans, the ooo/sync speedup, ooo as
% of oracle (oracle makespan / ooo makespan), mean calls in flight, whether the world
hashes agree, and simulated calls per wall second. Writes JSON and a plot (matplotlib).

    python -m simulations.metropolis_scaling [--steps 40] [--replicas 8]
        [--profile l4-llama3-8b] [--sizes 25 100 250 500 1000] [--dynamics generative]
        [--json out/metropolis_scaling.json] [--plot out/metropolis_scaling.png]

``--dynamics dense`` reproduces the figures of the town's first (dense) model.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from agentrt.output_files import write_figure
from agentrt.report import number, write_json
from agentrt.simulation import TownScenario, TownWorld
from agentrt.simulation.cosim import CosimConfig
from agentrt.simulation.runner import run_simulation, speedups

SIZES = (25, 100, 250, 500, 1000)


def run_size(
    n: int, steps: int, seed: int, cfg: CosimConfig, dynamics: str = "generative"
) -> dict[str, Any]:
    sc = TownScenario(agents=n, seed=seed, dynamics=dynamics)
    t0 = time.perf_counter()
    res = run_simulation(lambda: TownWorld(sc), steps, ["sync", "ooo", "oracle"], cosim=cfg)
    wall = time.perf_counter() - t0
    sync, ooo, oracle = res["sync"], res["ooo"], res["oracle"]
    return {
        "agents": n,
        "steps": steps,
        "makespan": {m: r.makespan for m, r in res.items()},
        "parallelism": {m: r.parallelism for m, r in res.items()},
        "calls": sync.calls,
        **speedups(sync.makespan, ooo.makespan, oracle.makespan),
        "hashes_agree": sync.world_hash == ooo.world_hash == oracle.world_hash,
        "calls_per_wall_s": {m: r.extra["calls_per_wall_s"] for m, r in res.items()},
        "wall_s": wall,
    }


def plot(rows: list[dict[str, Any]], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["agents"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(sizes, [r["ooo_over_sync"] for r in rows], "o-", label="ooo / sync")
    ax.plot(sizes, [r["oracle_over_sync"] for r in rows], "s--", label="oracle / sync")
    ax.set_xscale("log")
    ax.set_xlabel("agents")
    ax.set_ylabel("speedup over sync")
    ax2 = ax.twinx()
    ax2.plot(
        sizes, [r["ooo_pct_of_oracle"] for r in rows], "^:", color="gray", label="ooo % of oracle"
    )
    ax2.set_ylabel("ooo % of oracle")
    ax2.set_ylim(0, 105)
    lines = ax.get_legend_handles_labels()
    more = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="lower right")
    ax.set_title(title)
    fig.tight_layout()
    write_figure(fig, path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--profile", default="l4-llama3-8b")
    ap.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    ap.add_argument("--json", default="out/metropolis_scaling.json")
    ap.add_argument("--plot", default="out/metropolis_scaling.png")
    ap.add_argument("--dynamics", default="generative", choices=["generative", "dense"])
    args = ap.parse_args()

    cfg = CosimConfig(profile=args.profile, replicas=args.replicas)
    rows = []
    print(
        f"{'agents':>6} {'sync s':>8} {'ooo s':>8} {'oracle s':>8} {'ooo/sync':>8} "
        f"{'% oracle':>8} {'par ooo':>8} {'calls':>7} {'calls/s':>8}  hash"
    )
    for n in args.sizes:
        row = run_size(n, args.steps, args.seed, cfg, args.dynamics)
        rows.append(row)
        mk = row["makespan"]
        print(
            f"{n:>6} {mk['sync']:>8.1f} {mk['ooo']:>8.1f} {mk['oracle']:>8.1f} "
            f"{number(row['ooo_over_sync'], '>7.2f')}x "
            f"{number(row['ooo_pct_of_oracle'], '>7.1f')}% "
            f"{row['parallelism']['ooo']:>8.1f} {row['calls']:>7} "
            f"{row['calls_per_wall_s']['ooo']:>8,.0f}  "
            f"{'same' if row['hashes_agree'] else 'DIFFERENT'}",
            flush=True,
        )
    write_json(
        args.json,
        {
            "study": "metropolis_scaling",
            "profile": args.profile,
            "replicas": args.replicas,
            "seed": args.seed,
            "dynamics": args.dynamics,
            "layout": TownScenario(dynamics=args.dynamics).base_layout,
            "rows": rows,
        },
    )
    title = (
        f"AI Metropolis scaling ({args.dynamics} town, {args.profile}, "
        f"{args.replicas} replicas, {args.steps} steps)"
    )
    plot(rows, args.plot, title)
    print(f"wrote {args.json} and {args.plot}")


if __name__ == "__main__":
    main()
