"""`agentrt bench kvflow`: argument parsing, default sizes, the table and the JSON."""

from __future__ import annotations

import argparse
from typing import Any

from agentrt.bench.kvflow_workloads import KVFlowWorkload, concurrent, single
from agentrt.cli_types import add_common_flags, positive_int
from agentrt.report import format_table, write_json

POLICIES = "lru,hicache,kvflow,belady,ideal"
PAPER = {"single_over_hicache": 1.83, "concurrent_over_hicache": 2.19, "over_lru": 2.91}

SIZES = ("rounds", "prefix", "dynamic", "output", "instances", "device_prefixes")
DEFAULTS: dict[tuple[str, str], dict[str, int]] = {  # (scenario, backend) -> SIZES
    ("single", "sim"): dict(zip(SIZES, (3, 8192, 32, 32, 1, 3), strict=True)),
    ("single", "builtin"): dict(zip(SIZES, (2, 2048, 32, 32, 1, 3), strict=True)),
    ("concurrent", "sim"): dict(zip(SIZES, (3, 1024, 256, 256, 64, 2), strict=True)),
    ("concurrent", "builtin"): dict(zip(SIZES, (2, 512, 32, 16, 8, 2), strict=True)),
}


def make_workload(scenario: str, sizes: dict[str, int], vocab: int = 30_000) -> KVFlowWorkload:
    rounds, prefix, dynamic, output = (sizes[k] for k in SIZES[:4])
    if scenario == "single":
        return single(prefix, dynamic, output, rounds, vocab=vocab)
    return concurrent(prefix, dynamic, output, rounds, sizes["instances"], vocab=vocab)


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    defaults, given = DEFAULTS[(args.scenario, args.backend)], vars(args)
    return {k: defaults[k] if given[k] is None else given[k] for k in SIZES}


def _print(result: dict[str, Any]) -> None:
    measured = ("e2e_s", "device_hit_rate", "host_hit_rate", "recomputed_tokens")
    rows = [
        (name, *(r[k] for k in measured), r["loaded_bytes"] / 1e6, r["prefetch_late"])
        for name, r in result["policies"].items()
    ]
    clock = "virtual" if result["backend"] == "sim" else "wall"
    title = (
        f"KVFlow {result['scenario']} on {result['backend']}"
        f"{' / ' + result['profile'] if result['profile'] else ''}"
    )
    header = [
        "policy",
        f"e2e s ({clock})",
        "device hit",
        "host hit",
        "recomputed",
        "loaded MB",
        "prefetch late",
    ]
    print(format_table(title, header, rows))
    paper_hicache = PAPER[f"{result['scenario']}_over_hicache"]
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}x"  # noqa: E731
    ratios = [
        ("kvflow over lru (GPU-only)", fmt(result["kvflow_over_lru"]), f"{PAPER['over_lru']}x"),
        ("kvflow over hicache", fmt(result["kvflow_over_hicache"]), f"{paper_hicache}x"),
        ("kvflow e2e / ideal e2e", fmt(result["kvflow_vs_ideal"]), "-"),
    ]
    print(format_table("Speedups (other e2e / kvflow e2e)", ["ratio", "measured", "paper"], ratios))
    pp = result["kvflow_minus_belady_hit_rate_pp"]
    print(
        f"kvflow - belady device hit rate: {'n/a' if pp is None else f'{pp:+.1f}'} pp; "
        f"identical outputs under every policy: {result['identical_outputs']}"
    )


def _compare_sim(args: argparse.Namespace, sizes: dict[str, int], result: dict) -> dict:
    """The sim backend with the calibrated CPU profile on the same workload and pools."""
    from agentrt.bench.kvflow_bench import run_kvflow_bench

    policies = list(result["policies"])
    sim = run_kvflow_bench(
        make_workload(args.scenario, sizes),
        "sim",
        args.sim_profile,
        policies,
        sizes["device_prefixes"],
        warmup=not args.no_warmup,
    )
    rows, errors = [], {}
    for name in policies:
        real, pred = result["policies"][name]["e2e_s"], sim["policies"][name]["e2e_s"]
        errors[name] = (pred - real) / real
        rows.append((name, real, pred, f"{100 * errors[name]:+.1f}%"))
    title = f"sim ({args.sim_profile}) vs builtin e2e"
    print(format_table(title, ["policy", "builtin s", "sim s", "error"], rows))
    return {
        "profile": args.sim_profile,
        "sim": sim,
        "error": errors,
        "max_abs_error": max(abs(e) for e in errors.values()),
    }


def _check_before_work(args: argparse.Namespace, policies: list[str]) -> None:
    """Policy names, profiles and flag combinations: ValueError before any policy runs."""
    from agentrt.engine.cost_model.profile import load_profile
    from agentrt.kvmanager.policy import get_policy

    if args.compare_sim and args.backend != "builtin":
        raise ValueError("--compare-sim compares the builtin backend with the sim backend")
    if not policies or len(set(policies)) != len(policies):
        raise ValueError(f"--policies must name distinct policies, got {args.policies!r}")
    for name in policies:
        try:
            get_policy(name)
        except ValueError as exc:
            raise ValueError(f"--policies: {exc}") from None
    if args.backend == "sim":
        load_profile(args.profile)
    if args.compare_sim:
        load_profile(args.sim_profile)


def cmd_bench_kvflow(args: argparse.Namespace) -> int:
    from agentrt.bench.kvflow_bench import run_kvflow_bench

    sizes = _sizes(args)
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    _check_before_work(args, policies)
    config: dict[str, Any] = {}
    if args.backend == "builtin":
        config.update(model=args.model, device=args.device, dtype=args.dtype)
    result = run_kvflow_bench(
        make_workload(args.scenario, sizes),
        args.backend,
        args.profile,
        policies,
        sizes["device_prefixes"],
        warmup=not args.no_warmup,
        progress=lambda line: print(line, flush=True),
        repeats=args.repeats or (3 if args.backend == "builtin" else 1),
        **config,
    )
    _print(result)
    if args.compare_sim:
        result["compare_sim"] = _compare_sim(args, sizes, result)
    write_json(args.json, result)
    return 0


def add_parser(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "kvflow",
        help="KV eviction policies (lru, hicache, kvflow, belady, ideal) on agent workflows",
        description="The KVFlow paper's two shapes through the real runtime: 'single' (one "
        "10-agent chain looping for several rounds, device pool = 3 prefixes + the running "
        "request) and 'concurrent' (many instances of a 4-agent looping chain). Every policy "
        "runs on the same inputs; the workflow runs one extra warm-up round first and the "
        "measurement window opens when every instance has started its second round. e2e is "
        "wall time on builtin and virtual time on sim.",
    )
    add_common_flags(p)
    p.add_argument("--scenario", choices=("single", "concurrent"), default="single")
    p.add_argument(
        "--dtype",
        default="auto",
        help="builtin: auto (bfloat16) or float32; bf16 logits depend on the batch's "
        "makeup, so concurrent runs can differ in tokens between policies, fp32 do not",
    )
    p.add_argument("--backend", choices=("builtin", "sim"), default="sim")
    p.add_argument("--profile", default="h100-llama3-8b", help="sim cost profile")
    p.add_argument("--policies", default=POLICIES, help="comma-separated")
    for key in SIZES:
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=positive_int,
            help="override the scenario's default size",
        )
    p.add_argument(
        "--repeats",
        type=positive_int,
        help="runs per policy, order rotated each time; the table shows the median e2e "
        "(default: 3 on builtin, whose wall time drifts, 1 on sim)",
    )
    p.add_argument(
        "--no-warmup", action="store_true", help="no warm-up round: measure from the cold start"
    )
    p.add_argument(
        "--compare-sim",
        action="store_true",
        help="builtin only: also run the sim backend and report its e2e error",
    )
    p.add_argument("--sim-profile", default="cpu-smollm2-135m", help="for --compare-sim")
    p.set_defaults(func=cmd_bench_kvflow)
