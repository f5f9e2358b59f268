"""`agentrt bench serve`: argument parsing, the workload it runs, the printed block."""

from __future__ import annotations

import argparse
import contextlib
import statistics
from pathlib import Path

import anyio

from agentrt.cli_types import fraction, positive_float, positive_int
from agentrt.output_files import add_json_flag
from agentrt.report import format_table, write_json
from agentrt.serve.bench_agents import MODES
from agentrt.serve.bench_server import served
from agentrt.serve.bench_tool_agent import TOOL_MODES
from agentrt.serve.engine_flags import add_engine_flags


def add_parser(bench_sub) -> None:
    p = bench_sub.add_parser(
        "serve",
        help="N concurrent HTTP clients against agentrt serve, beside the same run in-process",
        description="Drives a running server (--base-url) or starts `agentrt serve` with the "
        "engine flags given, with N concurrent streaming clients on a workload; then runs "
        "the same workload in-process on an engine with the same flags and prints both "
        "in the `vllm bench serve` layout with the server's overhead.",
    )
    add_engine_flags(p)
    p.add_argument("--base-url", default=None, help="a running server (default: start one)")
    p.add_argument("--api-key", default=None, help="bearer key of the server")
    p.add_argument(
        "--workload",
        default="mixed",
        help="mixed, short, mooncake or workflow (mixed); or kvflow-single / "
        "kvflow-concurrent / tool-agent: multi-agent programs, one server per mode",
    )
    p.add_argument(
        "--modes",
        default=None,
        help=f"kvflow-*: comma-separated modes ({','.join(MODES)}); tool-agent: "
        f"({','.join(TOOL_MODES)}, or the bound `ideal`; `hicache` recomputes a prefix "
        "it has no device room to load, as SGLang does, `+wait` waits for room, "
        "`+pin` pins tool pauses); default: all but `ideal`",
    )
    p.add_argument(
        "--endpoint",
        choices=("completions", "chat"),
        default="completions",
        help="/v1/completions with token ids, or /v1/chat/completions with the prompt as "
        "text (completions)",
    )
    p.add_argument("--clients", type=positive_int, default=16, help="concurrent clients (16)")
    p.add_argument("--num-requests", type=positive_int, default=64, help="requests (64)")
    p.add_argument("--output-len", type=positive_int, default=64, help="tokens per request (64)")
    p.add_argument(
        "--request-rate",
        type=positive_float,
        default=None,
        help="Poisson arrivals per second, at most --clients in flight (default: a closed "
        "loop: each client sends its next request when the last one ends)",
    )
    p.add_argument("--trace", default=None, help="mooncake: trace file (shared conversation)")
    p.add_argument(
        "--scale-tokens", type=positive_float, default=0.05, help="mooncake: length scale"
    )
    p.add_argument("--no-in-process", action="store_true", help="skip the in-process run")
    p.add_argument(
        "--rounds",
        type=positive_int,
        default=1,
        help="rounds of HTTP and in-process runs, alternating which goes first, each on a "
        "fresh workload of the same shape (mooncake: the same records, so later rounds hit the "
        "prefix cache); the overhead is the median over rounds, the block printed is the "
        "median round's (1)",
    )
    p.add_argument(
        "--pool-share",
        type=fraction,
        default=0.5,
        help="tool-agent: the device pool as a share of all conversations' KV (0.5)",
    )
    p.add_argument(
        "--pin-budget",
        type=fraction,
        default=0.5,
        help="tool-agent: the pin budget of the +pin modes, a share of the pool (0.5)",
    )
    p.add_argument(
        "--host-ratio",
        type=positive_float,
        default=2.0,
        help="tool-agent: the host tier of hicache modes as a multiple of the device pool "
        "(2.0: SGLang's --hicache-ratio default)",
    )
    p.add_argument(
        "--turns",
        type=positive_int,
        default=None,
        help="tool-agent: tool calls per workflow (builtin 4, sim 10)",
    )
    p.add_argument(
        "--result-words",
        type=positive_int,
        default=None,
        help="tool-agent: words in each tool result (builtin 60, sim 400)",
    )
    add_json_flag(p)
    p.set_defaults(func=_cmd_bench_serve)


def _cmd_bench_serve(args: argparse.Namespace) -> int:
    if args.workload == "tool-agent":
        from agentrt.serve.bench_tool_agent_cli import run_tool_agent_workload

        return run_tool_agent_workload(args)
    if args.workload.startswith("kvflow-"):
        from agentrt.serve.bench_agents_cli import run_agent_workload

        return run_agent_workload(args)
    from agentrt.serve.bench import as_chat, build_workload, overhead, run_http, run_in_process
    from agentrt.serve.engine_flags import build_engine, engine_config
    from agentrt.trace.metrics import format_serving

    engine = build_engine(engine_config(args))

    def workload(seed: int):
        requests = build_workload(
            args.workload,
            args.num_requests,
            engine.vocab_size or len(engine.tokenizer),
            args.output_len,
            seed=seed,
            trace=Path(args.trace) if args.trace else None,
            scale_tokens=args.scale_tokens,
            max_prompt=engine.max_model_len - args.output_len - 1,
        )
        return as_chat(requests, engine.tokenizer) if args.endpoint == "chat" else requests

    def run(mode: str, url: str, requests) -> dict:
        if mode == "HTTP":
            rate = args.request_rate
            run = anyio.run(
                run_http, url, requests, args.clients, args.api_key, args.endpoint, rate
            )
        else:
            run = anyio.run(run_in_process, engine, requests, args.clients, args.request_rate)
        return {**run[0], "prefix_hit_rate": run[1]}

    modes = ["HTTP"] if args.no_in_process else ["HTTP", "in-process"]
    rounds = []
    server = served(args) if args.base_url is None else contextlib.nullcontext(args.base_url)
    with server as url:
        for r in range(args.rounds):
            requests = workload(args.seed + r)  # a fresh workload: no prefix hits across rounds
            order = modes if r % 2 == 0 else modes[::-1]
            done = {mode: run(mode, url, requests) for mode in order}
            rounds.append({"results": {mode: done[mode] for mode in modes}})
            if len(modes) == 2:
                rounds[-1]["overhead"] = overhead(done["HTTP"], done["in-process"])
    median_round = rounds[_median_index(rounds)]
    results = median_round["results"]
    print(format_serving(results))
    rows = [
        ("Total input tokens", *(r["input_tokens"] for r in results.values())),
        ("Total generated tokens", *(r["output_tokens"] for r in results.values())),
        (
            "Total token throughput (tok/s)",
            *(r["total_token_throughput"] for r in results.values()),
        ),
        ("Prefix hit rate", *(r["prefix_hit_rate"] for r in results.values())),
    ]
    print(format_table("Tokens and prefix cache", ["metric", *results], rows))
    out = {
        "workload": args.workload,
        "endpoint": args.endpoint,
        "clients": args.clients,
        "request_rate": args.request_rate,
        "results": results,
    }
    if len(rounds) > 1:
        out["rounds"] = rounds
        if len(modes) == 2:
            print(_rounds_table(rounds))
    if len(modes) == 2:
        over = {
            k: statistics.median(r["overhead"][k] for r in rounds) for k in rounds[0]["overhead"]
        }
        out["overhead"] = over
        print(
            format_table(
                "Server overhead (HTTP vs in-process)",
                ["metric", "value"],
                [
                    ("output throughput, HTTP / in-process", over["output_throughput_ratio"]),
                    ("p50 TTFT overhead (ms)", over["ttft_p50_overhead_ms"]),
                    ("p50 E2E overhead (ms)", over["e2e_p50_overhead_ms"]),
                ],
            )
        )
    write_json(args.json, out)
    failed = sum(run["failed"] for r in rounds for run in r["results"].values())
    return 0 if failed == 0 else 1


def _median_index(rounds: list[dict]) -> int:
    """The round with the median throughput ratio (the lower middle one of an even count),
    or the first when there is no in-process run."""
    if "overhead" not in rounds[0]:
        return 0
    order = sorted(
        range(len(rounds)), key=lambda i: rounds[i]["overhead"]["output_throughput_ratio"]
    )
    return order[(len(order) - 1) // 2]


def _rounds_table(rounds: list[dict]) -> str:
    rows = []
    for i, r in enumerate(rounds):
        http, local, over = r["results"]["HTTP"], r["results"]["in-process"], r["overhead"]
        rows.append(
            (
                i + 1,
                "HTTP" if i % 2 == 0 else "in-process",
                http["output_throughput"],
                local["output_throughput"],
                over["output_throughput_ratio"],
                over["ttft_p50_overhead_ms"],
            )
        )
    head = [
        "round",
        "first",
        "HTTP tok/s",
        "in-process tok/s",
        "HTTP / in-process",
        "p50 TTFT overhead (ms)",
    ]
    return format_table("Rounds (the overhead below is their median)", head, rows)
