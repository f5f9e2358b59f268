"""The `agentrt bench` subcommands engine, tracker, workflows and sim (kvflow and serve
add their own)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agentrt.bench.peer_vllm import parse_peer
from agentrt.cli_types import add_common_flags, positive_int
from agentrt.output_files import add_json_flag
from agentrt.report import format_table, write_json


def add_bench_parsers(bench_sub: Any) -> None:
    engine = bench_sub.add_parser(
        "engine",
        help="our engine vs HF transformers generate",
        description="Batch-1 decode, a mixed batch of 16 and cached vs. cold TTFT, against "
        "HF transformers generate on the same model, dtype and machine.",
    )
    add_common_flags(engine)
    engine.add_argument("--dtype", default="auto", help="auto (bfloat16), float32, bfloat16")
    engine.add_argument(
        "--repeats", type=positive_int, default=2, help="best of N runs per case (2)"
    )
    engine.add_argument(
        "--max-num-batched-tokens",
        type=positive_int,
        default=1024,
        help="per-step token budget (1024)",
    )
    engine.add_argument(
        "--batch-invariant",
        action="store_true",
        help="run our engine in batch-invariant mode (EngineConfig.batch_invariant)",
    )
    engine.add_argument(
        "--peer",
        type=parse_peer,
        metavar="vllm[=VENV]",
        help="then run the same workload on vLLM's CPU build from VENV (default "
        "$AGENTRT_VLLM_VENV or ~/.cache/agentrt/peers/vllm-cpu) and print the ratios",
    )
    engine.add_argument(
        "--peer-workload",
        type=Path,
        metavar="BENCH.py",
        help="the peer's workload script (default: shared/peers/vllm-cpu/bench.py in the "
        "nearest folder above this checkout)",
    )
    engine.set_defaults(func=_cmd_bench_engine)

    tracker = bench_sub.add_parser(
        "tracker",
        help="dependency tracker releases/s and runtime overhead per call",
        description="Releases per second of the dependency tracker on a random DAG, and the "
        "runtime's own overhead per agent call with an instant model.",
    )
    tracker.add_argument("--calls", type=positive_int, default=100_000, help="DAG size (100,000)")
    tracker.add_argument(
        "--workflows", type=positive_int, default=2000, help="runtime workflows (2,000)"
    )
    add_json_flag(tracker)
    tracker.set_defaults(func=_cmd_bench_tracker)

    workflows = bench_sub.add_parser(
        "workflows",
        help="out-of-order release vs a global step barrier on the default model",
        description="N concurrent instances of a 4-agent fan-out workflow (scout -> pros, "
        "cons -> judge), run with a global step barrier and out of order, in one process. "
        "Each instance draws (seeded) its output budgets and its scout's tool latency.",
    )
    add_common_flags(workflows)
    workflows.add_argument(
        "--instances", type=positive_int, default=16, help="concurrent workflows (16)"
    )
    workflows.add_argument(
        "--min-tokens", type=positive_int, default=8, help="fewest tokens per call (8)"
    )
    workflows.add_argument(
        "--max-tokens", type=positive_int, default=64, help="most tokens per call (64)"
    )
    workflows.set_defaults(func=_cmd_bench_workflows)

    sim = bench_sub.add_parser(
        "sim",
        help="sim backend vs built-in engine (end-to-end time) and sim speed",
        description="Runs the engine bench's mixed batch and a sequential shared-prefix "
        "chain on the built-in engine and on the sim backend with a calibrated profile, "
        "prints real vs predicted time and whether both made the same schedule; then "
        "measures simulated LLM calls per wall second.",
    )
    add_common_flags(sim)
    sim.add_argument("--profile", default="cpu-smollm2-135m", help="profile name or JSON path")
    sim.add_argument("--calls", type=positive_int, default=20_000, help="calls for the speed run")
    sim.add_argument("--speed-only", action="store_true", help="skip the real-engine runs")
    sim.set_defaults(func=_cmd_bench_sim)


def _cmd_bench_engine(args: argparse.Namespace) -> int:
    from agentrt.bench.engine_bench import run_engine_bench
    from agentrt.bench.engine_table import engine_report
    from agentrt.bench.peer_vllm import default_venv, find_workload, run_vllm_peer
    from agentrt.engine import loader
    from agentrt.engine.compute_thread import on_compute_thread

    result = on_compute_thread(
        run_engine_bench,
        args.model,
        args.device,
        args.dtype,
        args.repeats,
        args.max_num_batched_tokens,
        batch_invariant=args.batch_invariant,
    )
    if args.peer is not None:
        result["peer"] = run_vllm_peer(
            result,
            loader.resolve_model_dir(args.model),
            args.peer.venv or default_venv(),
            args.peer_workload or find_workload(),
            args.repeats,
        )
    print(engine_report(result))
    write_json(args.json, result)
    return 0


def _cmd_bench_sim(args: argparse.Namespace) -> int:
    from agentrt.bench.sim_speed import sim_speed
    from agentrt.bench.sim_validation import validate
    from agentrt.engine.cost_model.profile import load_profile

    load_profile(args.profile)  # a bad name or file fails before the real-engine runs
    result: dict = {}
    if not args.speed_only:
        result = validate(args.profile, args.model)
        times = ("workload", "steps", "real_best_total_s", "real_s", "sim_s")
        rows = [
            (*(w[k] for k in times), f"{100 * w['error']:+.1f}%", w["same_schedule"])
            for w in result["workloads"]
        ]
        title = f"Sim ({args.profile}) vs built-in engine, end-to-end"
        header = [
            "workload",
            "steps",
            "real best s",
            "real step-best s",
            "sim s",
            "error",
            "same schedule",
        ]
        print(format_table(title, header, rows))
    speed = sim_speed(args.calls)
    result["speed"] = speed
    print(
        f"sim speed: {speed['calls']:,} calls ({speed['steps']} steps, mean batch "
        f"{speed['mean_batch']:.0f}) in {speed['wall_s']:.2f} s wall = "
        f"{speed['calls_per_wall_s']:,.0f} simulated LLM calls per wall second"
    )
    write_json(args.json, result)
    return 0


def _cmd_bench_tracker(args: argparse.Namespace) -> int:
    from agentrt.bench.runtime_overhead import runtime_overhead
    from agentrt.bench.tracker_bench import bench_tracker

    tracker = bench_tracker(args.calls, progress=True)
    runtime = runtime_overhead(args.workflows)
    rows = [
        ("tracker calls (random DAG)", tracker["num_calls"]),
        ("tracker releases / s", tracker["releases_per_s"]),
        ("tracker adds / s", tracker["add_per_s"]),
        ("tracker overhead per call (us)", tracker["overhead_us_per_call"]),
        ("runtime agent calls (instant model)", runtime["agent_calls"]),
        ("runtime overhead per call (us)", runtime["overhead_us_per_call"]),
    ]
    print(format_table("Dependency tracker and runtime overhead", ["metric", "value"], rows))
    write_json(args.json, {"tracker": tracker, "runtime": runtime})
    return 0


def _cmd_bench_workflows(args: argparse.Namespace) -> int:
    from agentrt.bench.workflows_bench import run_workflows_bench

    if args.min_tokens > args.max_tokens:
        raise ValueError(
            f"--min-tokens ({args.min_tokens}) must not exceed --max-tokens ({args.max_tokens})"
        )
    result = run_workflows_bench(
        args.instances, args.min_tokens, args.max_tokens, args.model, args.device
    )
    rows = [
        (name, r["wall_s"], r["llm_calls"], r["engine_steps"], r["mean_batch"])
        for name, r in (
            ("step barrier", result["barrier"]),
            ("out of order", result["out_of_order"]),
        )
    ]
    title = f"{args.instances} concurrent 4-agent fan-out workflows"
    print(format_table(title, ["mode", "wall s", "LLM calls", "engine steps", "mean batch"], rows))
    print(
        f"speedup (barrier / out-of-order wall time): {result['speedup']:.2f}x; "
        f"identical outputs: {result['identical_outputs']}"
    )
    write_json(args.json, result)
    return 0
