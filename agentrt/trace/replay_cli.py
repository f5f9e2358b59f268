"""The `agentrt replay` subcommand: arguments, the run, the printed block, JSON/plot/timeline."""

from __future__ import annotations

import argparse
import sys
import time

from agentrt.cli_types import (
    add_host_load_flag,
    int_at_least,
    nonneg_int,
    positive_float,
    positive_int,
)
from agentrt.engine.config import PAGE_SIZE
from agentrt.learn import read_learned
from agentrt.output_files import JSON, PLOT, add_json_flag, output_path
from agentrt.remote.cli_flags import add_remote_flags, remote_settings
from agentrt.report import write_json
from agentrt.trace.eligible import DISPATCH_MODES
from agentrt.trace.importers import FORMATS
from agentrt.trace.learned_hints import LEARNED_POLICY
from agentrt.trace.load import load_trace
from agentrt.trace.metrics import format_accounting, format_serving
from agentrt.trace.replay_options import ReplayOptions
from agentrt.trace.replay_run import ReplayJob, engine_config, run_policies
from agentrt.trace.timeline import Timeline


def add_replay_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a call trace under one or more KV policies",
        description="Replay a trace (ours, Mooncake JSONL or BurstGPT CSV) on the built-in "
        "engine or the sim backend, once per KV policy on a fresh engine, and print the "
        "serving metrics side by side with ratios over the first policy.",
    )
    p.add_argument("trace", help="trace file (.jsonl or .csv)")
    p.add_argument(
        "--backend",
        choices=("builtin", "sim", "openai"),
        default="sim",
        help="an engine here (builtin, sim) or a running OpenAI-compatible server "
        "(openai, with --base-url; its own policy) (sim)",
    )
    add_remote_flags(p)
    p.add_argument("--profile", help="sim cost profile (h100-llama3-8b)")
    p.add_argument("--model", help="builtin: model (default: SmolLM2-135M)")
    p.add_argument("--device", default="cpu", help="builtin: cpu or cuda[:N] (cpu)")
    p.add_argument(
        "--policy",
        default="lru",
        help="comma-separated: lru,hicache,kvflow,belady,...; kvflow-learned: kvflow with "
        "the steps-to-execution a server learns from the same calls (lru)",
    )
    p.add_argument(
        "--graph",
        metavar="FILE.json",
        help="kvflow-learned: start from a learned graph (GET /v1/workflows/learned)",
    )
    p.add_argument("--dispatch", choices=DISPATCH_MODES, default="timestamp", help="(timestamp)")
    p.add_argument(
        "--speed", type=positive_float, default=1.0, help="divide arrival/think times by X"
    )
    p.add_argument(
        "--scale-tokens", type=positive_float, default=1.0, help="scale prompt/output lengths"
    )
    p.add_argument("--max-requests", type=positive_int, help="replay the first N records")
    p.add_argument("--skip-bad", action="store_true", help="count and skip malformed lines")
    p.add_argument("--format", default="auto", choices=("auto", *FORMATS), help="(auto)")
    p.add_argument(
        "--kv-cache-tokens",
        type=int_at_least(PAGE_SIZE, "one KV page"),
        help="device KV pool (tokens)",
    )
    p.add_argument("--host-kv-cache-tokens", type=nonneg_int, help="host tier (tokens, 0: none)")
    add_host_load_flag(p)
    p.add_argument(
        "--jobs",
        type=positive_int,
        help="worker processes (sim: one per policy up to the CPU count; builtin: 1)",
    )
    p.add_argument(
        "--plot",
        metavar="PATH.png",
        type=output_path(PLOT, plot=True),
        help="latency CDFs, hit rates (.png, .pdf or .svg; needs matplotlib)",
    )
    p.add_argument("--timeline", metavar="PATH.json", type=output_path(JSON), help="Perfetto trace")
    p.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    add_json_flag(p)
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    if args.backend == "openai":
        return _replay_on_server(args)
    policies = [p.strip() for p in args.policy.split(",") if p.strip()]
    base = ReplayJob(
        trace=args.trace,
        backend=args.backend,
        policy=policies[0] if policies else "lru",
        fmt=args.format,
        skip_bad=args.skip_bad,
        max_requests=args.max_requests,
        profile=args.profile,
        model=args.model,
        device=args.device,
        kv_cache_tokens=args.kv_cache_tokens,
        host_kv_cache_tokens=args.host_kv_cache_tokens,
        host_load_waits=not args.recompute_when_no_room,
        options=ReplayOptions(
            dispatch=args.dispatch,
            speed=args.speed,
            scale_tokens=args.scale_tokens,
            progress=not args.no_progress,
            per_call=args.plot is not None,
        ),
        timeline=args.timeline is not None,
        graph=args.graph,
    )
    if args.graph is not None:  # fail fast on a missing or malformed graph
        if LEARNED_POLICY not in policies:
            raise SystemExit(f"agentrt replay: error: --graph needs --policy {LEARNED_POLICY}")
        try:
            read_learned(args.graph)
        except (OSError, ValueError) as exc:
            raise SystemExit(f"agentrt replay: error: --graph {args.graph}: {exc}") from None
    for policy in policies:  # fail fast on a bad policy or size, before any worker starts
        engine_config(ReplayJob(**{**base.__dict__, "policy": policy}))
    if args.backend == "sim":  # and on a bad cost profile
        from agentrt.engine.cost_model.profile import load_profile

        load_profile(engine_config(base).profile)
    # fail fast (file:line) on a bad trace
    trace = load_trace(base.trace, base.fmt, base.skip_bad, base.max_requests)
    config = engine_config(base)
    print(
        f"trace {args.trace}: {len(trace.records):,} requests"
        + (f" ({len(trace.skipped)} skipped)" if trace.skipped else "")
        + f"; backend {config.backend}"
        + (f" ({config.profile})" if config.backend == "sim" else "")
        + f"; device KV {config.kv_capacity_tokens:,} tokens"
        + f"; dispatch {args.dispatch}, speed {args.speed}, scale {args.scale_tokens}"
    )
    jobs = args.jobs if args.jobs is not None else (None if args.backend == "sim" else 1)
    wall = time.perf_counter()
    results, timeline = run_policies(base, policies, jobs)
    wall = time.perf_counter() - wall
    print(format_serving(results, baseline=policies[0]))
    accounting = format_accounting(results)
    if accounting:
        print(accounting)
    print(f"replayed {len(policies)} policies in {wall:.1f} s wall")
    # the measurement first: a plot or timeline that fails afterwards cannot cost it
    write_json(
        args.json, {p: {k: v for k, v in r.items() if k != "calls"} for p, r in results.items()}
    )
    return max(_exit_status(results), _write_extras(args, results, timeline))


def _write_extras(args: argparse.Namespace, results: dict, timeline: Timeline | None) -> int:
    """The plot and the timeline; one that fails is reported and the other still written.
    Returns the exit status: 1 when one failed."""
    status = 0
    if args.plot:
        try:
            from agentrt.trace.plot import plot_replay

            plot_replay(results, args.plot, title=f"{args.trace} ({args.backend})")
            print(f"wrote {args.plot}")
        except Exception as exc:  # any drawing error; the JSON is already written
            print(f"agentrt: error: --plot {args.plot}: {exc}", file=sys.stderr)
            status = 1
    if timeline is not None:
        try:
            timeline.write(args.timeline)
            print(f"wrote {args.timeline}")
        except Exception as exc:
            print(f"agentrt: error: --timeline {args.timeline}: {exc}", file=sys.stderr)
            status = 1
    return status


def _exit_status(results: dict[str, dict]) -> int:
    """0 when every policy completed at least one request (failures are counted, as in
    `vllm bench serve`); 1, saying why, when under some policy none completed."""
    status = 0
    for policy, r in results.items():
        if r["completed"] == 0:
            why = [f"{count} x {reason}" for reason, count in r["failures"].items()]
            if r["skipped"]:
                why.append(f"{r['skipped']} skipped")
            print(
                f"agentrt: error: no request completed under {policy} "
                f"({r['read']} lines read: {'; '.join(why)})",
                file=sys.stderr,
            )
            status = 1
    return status


def _replay_on_server(args: argparse.Namespace) -> int:
    """`--backend openai`: the trace's calls against the server at `--base-url`."""
    import anyio

    from agentrt.engine import loader
    from agentrt.remote import OpenAIBackend
    from agentrt.remote.replay import RemoteReplayer

    settings = remote_settings(args, "replay", args.served_model)
    trace = load_trace(args.trace, args.format, args.skip_bad, args.max_requests)
    tokenizer = loader.load_tokenizer(loader.resolve_model_dir(args.tokenizer))
    options = ReplayOptions(
        dispatch=args.dispatch,
        speed=args.speed,
        scale_tokens=args.scale_tokens,
        progress=not args.no_progress,
    )

    async def main() -> dict:
        async with OpenAIBackend(settings, tokenizer) as backend:
            print(
                f"trace {args.trace}: {len(trace.records):,} requests; server "
                f"{args.base_url} ({backend.kind}, model {backend.model}); dispatch "
                f"{args.dispatch}, speed {args.speed}, scale {args.scale_tokens}"
            )
            return await RemoteReplayer(backend, trace.records, options, len(tokenizer)).run()

    wall = time.perf_counter()
    result = anyio.run(main)
    result["wall_s"] = time.perf_counter() - wall
    result["read"] = trace.read
    result["skipped"] = len(trace.skipped)
    results = {"server": result}
    print(format_serving(results))
    write_json(args.json, results)
    return _exit_status(results)
