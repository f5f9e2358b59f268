"""`agentrt bench serve --workload tool-agent`: one run per mode, side by side.

On `builtin` each mode is a fresh `agentrt serve` driven by the HTTP clients
(`bench_tool_agent`, wall clock); on `sim` each mode is a fresh cost-model engine driven
in process on its virtual clock (`bench_tool_agent_sim`). The device pool is
`--pool-share` of all conversations' KV at their end (more KV than it holds); `hicache`
gets a host tier of `--host-ratio` times the device pool (2.0, as SGLang sizes HiCache's
host pool by default: `--hicache-ratio 2`) and recomputes a prefix it has no device room
to load, as SGLang does; `+wait` waits for room instead (agentrt's default). `ideal`
(only when named in `--modes`) gives the device pool the host tier's pages too, so
nothing ever leaves the device: the bound no eviction or pinning policy beats with that
much memory.
"""

from __future__ import annotations

import argparse
import copy

import anyio

from agentrt.report import format_table, write_json
from agentrt.serve.bench_server import modes_of, served
from agentrt.serve.bench_tool_agent import (
    TOOL_MODES,
    ToolAgentWorkload,
    jct_figures,
    mode_parts,
)

# per backend: a small config for 2 CPU cores; Continuum's regime on the H100 profile
# (conversations of ~6k tokens whose re-prefill costs ~0.2 s, 64 of them at once)
SIZES = {
    "builtin": dict(turns=4, system_words=200, result_words=60, answer_tokens=32),
    "sim": dict(turns=10, system_words=600, result_words=400, answer_tokens=64),
}
COLUMNS = ["mode", "JCT mean s", "JCT p50 s", "JCT p90 s", "device hit", "host hit",
           "recomputed tok", "host-loaded tok", "pinned", "shed", "lru / mode",
           "failures"]  # fmt: skip


def run_tool_agent_workload(args: argparse.Namespace) -> int:
    from agentrt.engine import loader
    from agentrt.serve.bench_tool_agent_sim import ToolAgentTokens

    backend = args.backend or "builtin"
    modes = modes_of(args, (*TOOL_MODES, "ideal")) if args.modes else list(TOOL_MODES)
    sizes = {**SIZES[backend], **_given(turns=args.turns, result_words=args.result_words)}
    workload = ToolAgentWorkload(workflows=args.clients, seed=args.seed or 0, **sizes)
    tokenizer = loader.load_tokenizer(loader.resolve_model_dir(args.model))
    texts = ToolAgentTokens(workload, tokenizer)
    page = args.page_size or 16
    # (chat rendering adds a few tokens per message, the tools' schemas more on builtin)
    all_pages = sum(-(-texts.conversation_tokens(w) // page) for w in range(workload.workflows))
    device = max(1, int(all_pages * args.pool_share))
    results = {}
    for mode in modes:
        parts = mode_parts(mode)
        policy, rule = parts.policy, parts.pin_rule
        budget = args.pin_budget if rule is not None else 0.0
        host = int(device * args.host_ratio) if policy in ("hicache", "ideal") else 0
        mode_args = copy.copy(args)
        mode_args.recompute_when_no_room = not parts.waits_for_room
        try:
            if backend == "sim":
                results[mode] = _sim_run(mode_args, texts, policy, device, host, budget,
                                         rule or "cost")  # fmt: skip
            else:
                results[mode] = _http_run(mode_args, workload, policy, device * page,
                                          host * page, budget, rule or "cost")  # fmt: skip
        except RuntimeError as exc:  # e.g. its server did not start: the other modes go on
            results[mode] = {**jct_figures([]), "device_hit_rate": float("nan"),
                             "host_hit_rate": float("nan"), "pinned_answers": 0,
                             "failures": [f"{mode}: {exc}"]}  # fmt: skip
    base = results.get("lru", {}).get("jct_mean_s")
    rows = [
        (mode, r["jct_mean_s"], r["jct_p50_s"], r["jct_p90_s"], r["device_hit_rate"],
         r["host_hit_rate"], r.get("recomputed_tokens", float("nan")),
         r.get("host_loaded_tokens", float("nan")), r["pinned_answers"],
         r.get("pins_shed", float("nan")),
         base / r["jct_mean_s"] if base and r["jct_mean_s"] else float("nan"),
         len(r["failures"]))
        for mode, r in results.items()
    ]  # fmt: skip
    clock = "virtual s, in process" if backend == "sim" else "wall s, through HTTP"
    print(
        format_table(
            f"tool-agent on {backend} ({clock}): {workload.workflows} ReAct workflows x "
            f"{workload.turns} tool calls (pauses 50 ms-5 s by tool); ~"
            f"{all_pages * page // workload.workflows} tokens each at the end, device pool "
            f"{device} pages = {args.pool_share:g} of all, host {args.host_ratio:g}x it (hicache); "
            f"pin budget {args.pin_budget:g}",
            COLUMNS,
            rows,
        )
    )
    out = {
        "workload": "tool-agent",
        "backend": backend,
        "sizes": {"workflows": workload.workflows, **sizes},
        "all_pages": all_pages,
        "device_pages": device,
        "pool_share": args.pool_share,
        "pin_budget": args.pin_budget,
        "host_ratio": args.host_ratio,
        "results": results,
    }
    write_json(args.json, out)
    return 0 if all(not r["failures"] for r in results.values()) else 1


def _given(**sizes: int | None) -> dict[str, int]:
    return {name: value for name, value in sizes.items() if value is not None}


def _sim_run(args, texts, policy: str, device: int, host: int, budget: float, rule: str):
    page = args.page_size or 16
    from agentrt.engine.llm_engine import LLMEngine
    from agentrt.serve.bench_tool_agent_sim import run_tool_agents_sim
    from agentrt.serve.engine_flags import engine_config

    config = engine_config(_with_pools(args, policy, device * page, host * page))
    return run_tool_agents_sim(LLMEngine.from_config(config), texts, budget, rule)


def _with_pools(args, policy: str, device_tokens: int, host_tokens: int):
    out = copy.copy(args)
    out.eviction_policy = policy
    out.kv_cache_tokens = device_tokens
    out.host_kv_cache_tokens = host_tokens
    return out


def _http_run(args, workload, policy: str, device_tokens: int, host_tokens: int,
              budget: float, rule: str) -> dict:  # fmt: skip
    from agentrt.serve.bench_tool_agent import run_tool_agents

    server_args = _with_pools(args, policy, device_tokens, host_tokens)
    with served(server_args, ("--pin-budget", str(budget), "--pin-rule", rule)) as url:
        return anyio.run(run_tool_agents, url, workload)
