"""Preview of the AI Metropolis scaling study on the virtual clock (no LLM, no engine).

For 25 .. 1,000 agents, runs the town under sync, ooo and oracle with the deterministic
`VirtualExecutor` (unbounded parallelism: every ready call runs at once) and prints the
virtual makespans, ooo/sync speedup, ooo as % of oracle (oracle makespan / ooo makespan),
achieved parallelism, and checks that the world hashes agree. The real study (engine
replicas, batching limits, the L4 profile) will replace the executor.

    python -m simulations.metropolis_virtual [--steps 60] [--seed 0] [--json out.json]
"""

from __future__ import annotations

import argparse
import time

from agentrt.report import number, write_json
from agentrt.simulation import TownScenario, TownWorld, run_modes
from agentrt.simulation.runner import speedups

SIZES = (25, 100, 250, 500, 1000)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start-hour", type=float, default=8.0)
    ap.add_argument("--sizes", type=int, nargs="*", default=list(SIZES))
    ap.add_argument("--json", help="write the rows here")
    args = ap.parse_args()

    rows = []
    head = (
        f"{'agents':>6} {'sync s':>9} {'ooo s':>9} {'oracle s':>9} {'ooo/sync':>8} "
        f"{'% oracle':>8} {'par sync':>8} {'par ooo':>8} {'calls':>7} {'wall s':>6}  hash"
    )
    print(head)
    for n in args.sizes:
        sc = TownScenario(agents=n, seed=args.seed, steps=args.steps, start_hour=args.start_hour)
        t0 = time.perf_counter()
        res = run_modes(lambda sc=sc: TownWorld(sc), args.steps)
        wall = time.perf_counter() - t0
        sync, ooo, oracle = res["sync"], res["ooo"], res["oracle"]
        same = sync.world_hash == ooo.world_hash == oracle.world_hash
        row = {
            "agents": n,
            "steps": args.steps,
            "makespan": {m: r.makespan for m, r in res.items()},
            "parallelism": {m: r.parallelism for m, r in res.items()},
            "calls": sync.calls,
            **speedups(sync.makespan, ooo.makespan, oracle.makespan),
            "hashes_agree": same,
            "wall_s": wall,
        }
        rows.append(row)
        print(
            f"{n:>6} {sync.makespan:>9.1f} {ooo.makespan:>9.1f} {oracle.makespan:>9.1f} "
            f"{number(row['ooo_over_sync'], '>7.2f')}x "
            f"{number(row['ooo_pct_of_oracle'], '>7.1f')}% "
            f"{sync.parallelism:>8.1f} {ooo.parallelism:>8.1f} {sync.calls:>7} {wall:>6.1f}  "
            f"{'same' if same else 'DIFFERENT'}"
        )
    write_json(args.json, {"study": "metropolis_virtual", "seed": args.seed, "rows": rows})


if __name__ == "__main__":
    main()
