"""`agentrt bench serve` for the KVFlow workloads: one server per mode, side by side.

`kvflow-single` / `kvflow-concurrent` (`bench_agents`); pools are sized from the prompts
as the server renders them.
"""

from __future__ import annotations

import argparse
import copy

import anyio

from agentrt.report import format_table, write_json
from agentrt.serve.bench_agents import MODES, POLICY
from agentrt.serve.bench_server import modes_of, served


def run_agent_workload(args: argparse.Namespace) -> int:
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
    modes = modes_of(args, MODES)
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
