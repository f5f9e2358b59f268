"""How the AI Metropolis speedups depend on the town model (sim backend, virtual time).

One town size (default 500 agents, 8 L4 replicas, 60 steps), one factor varied at a
time from the default world: the dynamics (generative | dense), the layout (smallville
| compact), the start hour (what the agents are doing) and the chance that an agent who
meets someone starts a conversation. Each row runs sync, ooo and oracle and records
makespans, ooo/sync, oracle/sync, ooo as % of oracle, calls and whether hashes agree.

    python -m simulations.metropolis_sensitivity [--agents 500] [--steps 60]
        [--replicas 8] [--json out/metropolis_sensitivity.json]
"""

from __future__ import annotations

import argparse
from typing import Any

from agentrt.report import number, write_json
from agentrt.simulation import TownScenario, TownWorld
from agentrt.simulation.cosim import CosimConfig
from agentrt.simulation.runner import run_simulation, speedups

VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("default (generative, smallville, 07:00, p=0.5)", {}),
    ("dense dynamics, compact layout", {"dynamics": "dense"}),
    ("generative, compact layout", {"layout": "compact"}),
    ("start 09:00", {"start_hour": 9.0}),
    ("start 12:00", {"start_hour": 12.0}),
    ("start 17:00", {"start_hour": 17.0}),
    ("talk probability 0.25", {"talk_probability": 0.25}),
    ("talk probability 1.0", {"talk_probability": 1.0}),
]


def run_variant(agents: int, steps: int, seed: int, change: dict, cfg: CosimConfig) -> dict:
    sc = TownScenario(agents=agents, seed=seed, **change)
    res = run_simulation(lambda: TownWorld(sc), steps, ["sync", "ooo", "oracle"], cosim=cfg)
    sync, ooo, oracle = (res[m].makespan for m in ("sync", "ooo", "oracle"))
    return {
        "change": change,
        "makespan": {m: r.makespan for m, r in res.items()},
        "parallelism": {m: r.parallelism for m, r in res.items()},
        "calls": res["sync"].calls,
        **speedups(sync, ooo, oracle),
        "hashes_agree": len({r.world_hash for r in res.values()}) == 1,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replicas", type=int, default=8)
    ap.add_argument("--profile", default="l4-llama3-8b")
    ap.add_argument("--json", default="out/metropolis_sensitivity.json")
    args = ap.parse_args()
    cfg = CosimConfig(profile=args.profile, replicas=args.replicas)
    rows = []
    print(
        f"{'variant':<48} {'sync s':>8} {'ooo s':>8} {'oracle s':>8} {'ooo/sync':>8} "
        f"{'orc/sync':>8} {'% oracle':>8} {'calls':>7}  hash"
    )
    for name, change in VARIANTS:
        row = run_variant(args.agents, args.steps, args.seed, change, cfg) | {"variant": name}
        rows.append(row)
        mk = row["makespan"]
        print(
            f"{name:<48} {mk['sync']:>8.1f} {mk['ooo']:>8.1f} {mk['oracle']:>8.1f} "
            f"{number(row['ooo_over_sync'], '>7.2f')}x "
            f"{number(row['oracle_over_sync'], '>7.2f')}x "
            f"{number(row['ooo_pct_of_oracle'], '>7.1f')}% {row['calls']:>7}  "
            f"{'same' if row['hashes_agree'] else 'DIFFERENT'}",
            flush=True,
        )
    write_json(
        args.json,
        {
            "study": "metropolis_sensitivity",
            "agents": args.agents,
            "steps": args.steps,
            "seed": args.seed,
            "profile": args.profile,
            "replicas": args.replicas,
            "rows": rows,
        },
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
