"""`agentrt bench serve` for multi-agent workloads: one server per mode, side by side.

`kvflow-single` / `kvflow-concurrent` (`bench_agents`) and `tool-agent`
(`bench_tool_agent`); pools are sized from the prompts as the server renders them.
"""

from __future__ import annotations

import argparse
import copy

import anyio

from agentrt.report import format_table, write_json
from agentrt.serve.bench_agents import MODES, POLICY
from agentrt.serve.bench_cli import served
from agentrt.serve.bench_tool_agent import TOOL_MODES


def run_agent_workload(args: argparse.Namespace) -> int:
    if args.workload == "tool-agent":
        return _cmd_bench_tools(args)
    return _cmd_bench_agents(args)


def _cmd_bench_agents(args: argparse.Namespace) -> int:
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
        with served(server_args) as url:
            results[mode] = anyio.run(run_agent_clients, url, texts, mode)
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
    from agentrt.engine import loader
    from agentrt.serve.bench_tool_agent import ToolAgentWorkload, run_tool_agents

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
        with served(server_args, ("--pin-budget", budget)) as url:
            results[mode] = anyio.run(run_tool_agents, url, workload)
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
