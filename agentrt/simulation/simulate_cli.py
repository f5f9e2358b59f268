"""`agentrt simulate`: a multi-agent town under execution modes, side by side."""

from __future__ import annotations

import argparse

from agentrt.cli_types import add_common_flags, finite_float, nonneg_int, positive_int
from agentrt.remote.cli_flags import add_remote_flags, remote_settings
from agentrt.report import format_table, write_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    simulate = sub.add_parser(
        "simulate",
        help="run a multi-agent town under execution modes and compare them",
        description="Runs a Smallville-like town under sync / ooo / oracle / single on the "
        "built-in engine (wall time, real model outputs) or the sim backend (cost model, "
        "virtual time), and prints time, LLM calls, mean calls in flight, % of oracle and "
        "the world hash per mode. `--mode all` = sync, ooo, oracle (oracle replays the "
        "dependencies sync recorded).",
    )
    add_common_flags(simulate)
    simulate.add_argument("--world", default="town", choices=["town"], help="world (town)")
    simulate.add_argument("--agents", type=positive_int, help="agents (default 25)")
    simulate.add_argument("--steps", type=positive_int, help="steps (default 96)")
    simulate.add_argument("--mode", default="all", help="single, sync, ooo, oracle or all (all)")
    simulate.add_argument(
        "--backend",
        default="sim",
        choices=["builtin", "sim", "openai"],
        help="builtin (real engine), sim (cost model) or openai (a running "
        "OpenAI-compatible server at --base-url, real model outputs, wall time) (sim)",
    )
    add_remote_flags(simulate)
    simulate.add_argument(
        "--profile", default="l4-llama3-8b", help="sim profile name or JSON path (l4-llama3-8b)"
    )
    simulate.add_argument("--replicas", type=positive_int, default=1, help="engine replicas (1)")
    simulate.add_argument("--seed", type=int, help="world seed (0)")
    simulate.add_argument("--scenario", help="scenario file (.json/.yaml)")
    simulate.add_argument(
        "--dynamics",
        choices=["generative", "dense"],
        help="what agents do: generative (Generative Agents loop: sleep, long actions, "
        "multi-turn conversations) or dense (every agent calls the model every step) "
        "(the scenario's: generative)",
    )
    simulate.add_argument(
        "--layout",
        choices=["smallville", "compact"],
        help="base tile: smallville (140x100 cells per 25 agents) or compact (40x40) "
        "(default: smallville for generative, compact for dense)",
    )
    simulate.add_argument("--start-hour", type=finite_float, help="time of day at step 0 (7.0)")
    simulate.add_argument("--policy", help="KV eviction policy (kvflow with a host tier, else lru)")
    simulate.add_argument(
        "--host-kv-tokens",
        type=nonneg_int,
        default=0,
        help="host KV tier size per replica, tokens (0: none)",
    )
    simulate.add_argument(
        "--max-tokens",
        type=positive_int,
        help="cap on every LLM call's output tokens (default: the world's)",
    )
    simulate.add_argument("--dtype", default="auto", help="builtin engine dtype (auto)")
    simulate.add_argument(
        "--no-batch-invariant",
        action="store_true",
        help="builtin: use the faster attention whose low bits depend on the batch (in "
        "bf16, modes that batch differently then generate different text and world hashes)",
    )
    simulate.add_argument(
        "--no-warmup",
        action="store_true",
        help="builtin: skip the unmeasured warm-up run of the first mode (a cold process "
        "runs its first simulation slower, which favours the modes run after it)",
    )
    simulate.set_defaults(func=_cmd_simulate)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from agentrt.engine.config import EngineConfig
    from agentrt.simulation import TownScenario, TownWorld, load_scenario, scenario_from_dict
    from agentrt.simulation.cosim import CosimConfig
    from agentrt.simulation.mode_order import expand_modes
    from agentrt.simulation.runner import BuiltinConfig, RemoteConfig, run_simulation, summarize

    modes = expand_modes(args.mode)
    scenario = load_scenario(args.scenario) if args.scenario else TownScenario()
    given = {k: vars(args)[k] for k in ("agents", "seed", "dynamics", "layout", "start_hour")}
    overrides = {k: v for k, v in given.items() if v is not None}
    if overrides:  # validated like a scenario file
        data = scenario.model_dump(exclude_unset=True) | overrides
        scenario = scenario_from_dict(data, "command line")
    steps = args.steps if args.steps is not None else scenario.steps
    host = args.host_kv_tokens
    policy = args.policy or ("kvflow" if host > 0 else "lru")
    cosim = CosimConfig(
        profile=args.profile,
        replicas=args.replicas,
        host_kv_cache_tokens=host,
        policy=policy,
        max_tokens=args.max_tokens,
    )
    builtin = BuiltinConfig(
        EngineConfig(
            model=args.model,
            device=args.device,
            dtype=args.dtype,
            eviction_policy=policy,
            host_kv_cache_tokens=host,
            batch_invariant=not args.no_batch_invariant,
        ),
        replicas=args.replicas,
        max_tokens=args.max_tokens,
        warmup=not args.no_warmup,
    )
    remote = None
    if args.backend == "openai":
        from agentrt.engine import loader

        remote = RemoteConfig(
            remote_settings(args, "simulate", args.served_model),
            loader.load_tokenizer(loader.resolve_model_dir(args.tokenizer)),
            max_tokens=args.max_tokens,
        )
    results = run_simulation(
        lambda: TownWorld(scenario),
        steps,
        modes,
        backend=args.backend,
        cosim=cosim,
        builtin=builtin,
        remote=remote,
    )
    summary = summarize(results)
    unit = "virtual s" if args.backend == "sim" else "wall s"
    rows = []
    for m, d in summary["modes"].items():
        pct = "-" if d["pct_of_oracle"] is None else f"{d['pct_of_oracle']:.1f}%"
        rows.append(
            (m, d["makespan"], d["calls"], d["parallelism"], pct, d["world_hash"], d["wall_s"])
        )
    where = f"{args.backend}" + (f", {args.profile}" if args.backend == "sim" else "")
    if args.backend == "openai":
        where += f" at {args.base_url}"
    title = (
        f"Town simulation: {scenario.agents} agents, {steps} steps, {scenario.dynamics} "
        f"dynamics, {scenario.base_layout} layout ({where}, "
        f"{args.replicas} replica(s), policy {policy})"
    )
    header = [
        "mode",
        f"time ({unit})",
        "LLM calls",
        "mean calls in flight",
        "% of oracle",
        "world hash",
        "wall s",
    ]
    print(format_table(title, header, rows))
    if summary["ooo_over_sync"] is not None:
        print(f"ooo/sync speedup: {summary['ooo_over_sync']:.2f}x")
    if args.backend == "sim":
        for m, d in summary["modes"].items():
            print(f"{m}: {d['calls_per_wall_s']:,.0f} simulated LLM calls per wall second")
    print("world hashes: " + ("all equal" if summary["hashes_agree"] else "DIFFER"))
    write_json(
        args.json,
        {
            "command": "simulate",
            "world": args.world,
            "agents": scenario.agents,
            "steps": steps,
            "seed": scenario.seed,
            "dynamics": scenario.dynamics,
            "layout": scenario.base_layout,
            "start_hour": scenario.start_hour,
            "backend": args.backend,
            "replicas": args.replicas,
            "profile": args.profile if args.backend == "sim" else None,
            "policy": policy,
            "warmup": args.backend == "builtin" and not args.no_warmup,
            "max_tokens": args.max_tokens,
            **summary,
        },
    )
    return 0
