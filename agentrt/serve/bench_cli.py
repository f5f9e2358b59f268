"""`agentrt bench serve`: argument parsing, the server it starts, the printed block."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx

from agentrt.cli_types import positive_float, positive_int
from agentrt.output_files import JSON, output_path
from agentrt.report import format_table, write_json
from agentrt.serve.bench_agents import MODES, POLICY, TOOL_MODES


def add_parser(bench_sub, add_engine_flags) -> None:
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
        f"({','.join(TOOL_MODES)}); default: all",
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
        "--json", metavar="PATH.json", type=output_path(JSON), help="write results as JSON"
    )
    p.set_defaults(func=_cmd_bench_serve)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _engine_argv(args: argparse.Namespace) -> list[str]:
    flags = ["model", "device", "dtype", "backend", "profile", "kv_cache_tokens", "page_size"]
    flags += ["max_num_seqs", "max_num_batched_tokens", "eviction_policy"]
    flags += ["host_kv_cache_tokens", "seed"]
    argv = []
    for name in flags:
        value = vars(args)[name]
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    return argv


def start_server(
    args: argparse.Namespace, serve_argv: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """`agentrt serve` in a child process on a free loopback port, once it is healthy
    (`serve_argv`: server flags besides the engine's)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "agentrt.cli", "serve", "--port", str(port)]
    cmd += _engine_argv(args) + ["--max-pending", "100000", *serve_argv]
    env = {**os.environ, "AGENTRT_API_KEY": ""}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the server did not become healthy in 600 s")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)


def _cmd_bench_serve(args: argparse.Namespace) -> int:
    if args.workload.startswith("kvflow-"):
        return _cmd_bench_agents(args)
    if args.workload == "tool-agent":
        return _cmd_bench_tools(args)
    from agentrt.serve.bench import as_chat, build_workload, overhead, run_http, run_in_process
    from agentrt.serve.cli import build_engine, engine_config
    from agentrt.trace.metrics import format_serving

    engine = build_engine(engine_config(args))
    requests = build_workload(
        args.workload,
        args.num_requests,
        engine.vocab_size or len(engine.tokenizer),
        args.output_len,
        seed=args.seed,
        trace=Path(args.trace) if args.trace else None,
        scale_tokens=args.scale_tokens,
        max_prompt=engine.max_model_len - args.output_len - 1,
    )
    if args.endpoint == "chat":
        requests = as_chat(requests, engine.tokenizer)
    proc = None
    url = args.base_url
    if url is None:
        proc, url = start_server(args)
    try:
        http, http_hits = anyio.run(
            run_http, url, requests, args.clients, args.api_key, args.endpoint, args.request_rate
        )
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    results = {"HTTP": {**http, "prefix_hit_rate": http_hits}}
    if not args.no_in_process:
        local, local_hits = anyio.run(
            run_in_process, engine, requests, args.clients, args.request_rate
        )
        results["in-process"] = {**local, "prefix_hit_rate": local_hits}
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
    if "in-process" in results:
        over = overhead(results["HTTP"], results["in-process"])
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
    return 0 if all(r["failed"] == 0 for r in results.values()) else 1


def _cmd_bench_agents(args: argparse.Namespace) -> int:
    import copy

    from agentrt.bench.kvflow_cli import DEFAULTS, make_workload
    from agentrt.engine import loader
    from agentrt.serve.bench_agents import AgentTexts, run_agent_clients
    from agentrt.serve.chat_template import ChatRenderer
    from agentrt.serve.protocol import ChatMessage

    scenario = args.workload.removeprefix("kvflow-")
    backend = args.backend or "builtin"
    if (scenario, backend) not in DEFAULTS:
        raise SystemExit(
            f"unknown workload {args.workload!r}: use kvflow-single or kvflow-concurrent"
        )
    modes = _modes(args, MODES)
    sizes = DEFAULTS[(scenario, backend)]
    tokenizer = loader.load_tokenizer(loader.resolve_model_dir(args.model))
    workload = make_workload(scenario, sizes, vocab=len(tokenizer))
    texts = AgentTexts(workload, tokenizer)
    # pools sized from the prompts as the server renders them (decoded text re-tokenizes
    # to other ids), as `bench kvflow` sizes them from its token ids
    renderer = ChatRenderer(tokenizer)
    prefix_tokens = dynamic_tokens = 0
    for k, system in enumerate(texts.systems):
        messages = [
            ChatMessage(role="system", content=system),
            ChatMessage(role="user", content=texts.user(0, 1, k)),
        ]
        ids = renderer.render(messages, None)
        fixed = renderer.fixed_prefix_len(messages, None, ids)
        prefix_tokens = max(prefix_tokens, fixed)
        dynamic_tokens = max(dynamic_tokens, len(ids) - fixed)
    page = args.page_size or 16
    pages = lambda n: -(-n // page)  # noqa: E731
    own = pages(dynamic_tokens + workload.output) + 2
    device = sizes["device_prefixes"] * pages(prefix_tokens) + workload.instances * own
    calls = workload.agents * (workload.rounds + 1) * workload.instances
    host = workload.agents * pages(prefix_tokens) + calls * own
    rows, results = [], {}
    for mode in modes:
        server_args = copy.copy(args)
        server_args.eviction_policy = POLICY[mode]
        server_args.kv_cache_tokens = device * page
        server_args.host_kv_cache_tokens = host * page
        proc, url = start_server(server_args)
        try:
            result = anyio.run(run_agent_clients, url, texts, mode)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
        results[mode] = result
    base = results.get("lru", {}).get("e2e_s")
    for mode, r in results.items():
        speedup = base / r["e2e_s"] if base and r["e2e_s"] else float("nan")
        rows.append(
            (mode, r["e2e_s"], r["device_hit_rate"], r["host_hit_rate"], speedup,
             r["wall_s"], len(r["failures"]))
        )  # fmt: skip
    unit = "virtual s" if backend == "sim" else "s"
    print(
        format_table(
            f"{args.workload} through HTTP ({workload.instances} instances x "
            f"{workload.agents} agents, {workload.rounds} timed rounds after 1 warm-up; "
            f"prefix ~{prefix_tokens} tokens, device pool {device} pages)",
            ["mode", f"e2e ({unit})", "device hit", "host hit", "lru / mode", "wall s", "failures"],
            rows,
        )  # fmt: skip
    )
    if "kvflow-declared" in results and "kvflow-learned" in results:
        declared = results["kvflow-declared"]["e2e_s"]
        learned = results["kvflow-learned"]["e2e_s"]
        print(f"kvflow-learned / kvflow-declared e2e: {learned / declared:.3f}")
    out = {
        "workload": args.workload,
        "sizes": sizes,
        "prefix_tokens": prefix_tokens,
        "device_pages": device,
        "host_pages": host,
        "results": results,
    }
    write_json(args.json, out)
    return 0 if all(not r["failures"] for r in results.values()) else 1


def _modes(args: argparse.Namespace, known: tuple[str, ...]) -> list[str]:
    modes = [m for m in (args.modes or ",".join(known)).split(",") if m]
    for mode in modes:
        if mode not in known:
            raise SystemExit(f"unknown mode {mode!r}; use some of {','.join(known)}")
    return modes


PIN_BUDGET = "0.5"  # of the device pool, in the +pin modes


def _cmd_bench_tools(args: argparse.Namespace) -> int:
    import copy

    from agentrt.engine import loader
    from agentrt.serve.bench_agents import ToolAgentWorkload, run_tool_agents

    modes = _modes(args, TOOL_MODES)
    workload = ToolAgentWorkload(workflows=args.clients, seed=args.seed or 0)
    tokenizer = loader.load_tokenizer(loader.resolve_model_dir(args.model))
    # the KV of every conversation at its end, roughly (tool calls ~30 tokens each)
    tokens = len(tokenizer.encode(workload.system)) + len(tokenizer.encode(workload.task(0)))
    tokens += workload.turns * (len(tokenizer.encode(workload.result(0, 0))) + 30)
    page = args.page_size or 16
    all_pages = workload.workflows * -(-tokens // page)
    device = all_pages // 2  # more KV than the device pool holds
    results = {}
    for mode in modes:
        server_args = copy.copy(args)
        server_args.eviction_policy = mode.split("+")[0]
        server_args.kv_cache_tokens = device * page
        if server_args.eviction_policy == "hicache" and not args.host_kv_cache_tokens:
            server_args.host_kv_cache_tokens = 2 * all_pages * page
        budget = PIN_BUDGET if mode.endswith("+pin") else "0"
        proc, url = start_server(server_args, ("--pin-budget", budget))
        try:
            results[mode] = anyio.run(run_tool_agents, url, workload)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    base = results.get("lru", {}).get("jct_mean_s")
    rows = [
        (mode, r["jct_mean_s"], r["jct_p50_s"], r["jct_max_s"], r["device_hit_rate"],
         r["host_hit_rate"], r["pinned_answers"],
         base / r["jct_mean_s"] if base and r["jct_mean_s"] else float("nan"),
         len(r["failures"]))
        for mode, r in results.items()
    ]  # fmt: skip
    print(
        format_table(
            f"tool-agent through HTTP ({workload.workflows} ReAct workflows x "
            f"{workload.turns} tool calls, pauses {workload.pause_min_s}-"
            f"{workload.pause_max_s} s; ~{tokens} tokens each at the end, device pool "
            f"{device} pages = half of all; pin budget {PIN_BUDGET} in +pin modes)",
            [
                "mode",
                "JCT mean s",
                "JCT p50 s",
                "JCT max s",
                "device hit",
                "host hit",
                "pinned",
                "lru / mode",
                "failures",
            ],
            rows,
        )  # fmt: skip
    )
    out = {
        "workload": "tool-agent",
        "workflows": workload.workflows,
        "turns": workload.turns,
        "tokens_per_conversation": tokens,
        "device_pages": device,
        "pin_budget": float(PIN_BUDGET),
        "results": results,
    }
    write_json(args.json, out)
    return 0 if all(not r["failures"] for r in results.values()) else 1
