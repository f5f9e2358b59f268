"""`agentrt serve` and `agentrt bench serve`: argument parsing and wiring."""

from __future__ import annotations

import argparse
import os

from agentrt.cli_types import (
    add_host_load_flag,
    fraction,
    nonneg_float,
    nonneg_int,
    port,
    positive_float,
    positive_int,
)
from agentrt.engine.config import EngineConfig
from agentrt.serve.settings import PIN_RULES, ServeSettings


def add_engine_flags(p: argparse.ArgumentParser) -> None:
    """The engine settings a server (and the bench's in-process run) is built with."""
    p.add_argument("--model", default=None, help="model directory, .gguf or hub id (SmolLM2-135M)")
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N] (cpu)")
    p.add_argument("--dtype", default="auto", help="auto (bfloat16), float32, bfloat16")
    p.add_argument("--backend", choices=("builtin", "sim"), default="builtin", help="(builtin)")
    p.add_argument("--profile", default="h100-llama3-8b", help="sim cost profile (h100-llama3-8b)")
    p.add_argument(
        "--kv-cache-tokens", type=positive_int, default=32_768, help="device KV tokens (32768)"
    )
    p.add_argument("--page-size", type=positive_int, default=16, help="KV page size in tokens (16)")
    p.add_argument("--max-num-seqs", type=positive_int, default=64, help="running batch cap (64)")
    p.add_argument(
        "--max-num-batched-tokens",
        type=positive_int,
        default=512,
        help="per-step token budget (512)",
    )
    p.add_argument("--eviction-policy", default="lru", help="prefix-cache eviction policy (lru)")
    p.add_argument(
        "--host-kv-cache-tokens", type=nonneg_int, default=0, help="host KV tier tokens (0)"
    )
    add_host_load_flag(p)
    p.add_argument("--seed", type=int, default=0, help="sampling seed of unseeded requests (0)")
    p.add_argument(
        "--batch-invariant",
        action="store_true",
        help="outputs independent of how requests are batched (slower kernels)",
    )


def engine_config(args: argparse.Namespace) -> EngineConfig:
    return EngineConfig(
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        backend=args.backend,
        profile=args.profile,
        kv_cache_tokens=args.kv_cache_tokens,
        page_size=args.page_size,
        max_num_seqs=args.max_num_seqs,
        max_num_batched_tokens=args.max_num_batched_tokens,
        eviction_policy=args.eviction_policy,
        host_kv_cache_tokens=args.host_kv_cache_tokens,
        host_load_waits=not args.recompute_when_no_room,
        seed=args.seed,
        batch_invariant=args.batch_invariant,
    )


def build_engine(config: EngineConfig):
    """The engine for a server. The sim backend gets its model's tokenizer up front, as
    chat templates and detokenized text need it."""
    from agentrt.engine.llm_engine import LLMEngine

    engine = LLMEngine.from_config(config)
    engine.ensure_tokenizer()
    return engine


def _cmd_serve(args: argparse.Namespace) -> int:
    from agentrt.serve.server import serve

    settings = ServeSettings(
        host=args.host,
        port=args.port,
        api_key=args.api_key or os.environ.get("AGENTRT_API_KEY") or None,
        served_model_name=args.served_model_name,
        max_body_bytes=args.max_body_bytes,
        max_prompt_tokens=args.max_prompt_tokens,
        max_pending=args.max_pending,
        grace_seconds=args.grace_seconds,
        log_requests=args.log_requests,
        pin_budget=args.pin_budget,
        pin_rule=args.pin_rule,
        arrival_wait_ms=args.arrival_wait_ms,
    )
    serve(build_engine(engine_config(args)), settings)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="OpenAI-compatible HTTP server on the built-in engine",
        description="Serves /v1/chat/completions, /v1/completions, /v1/models, /health and "
        "/metrics (Prometheus). Binds loopback unless --host says otherwise.",
    )
    add_engine_flags(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    p.add_argument("--port", type=port, default=8000, help="port (8000)")
    p.add_argument(
        "--api-key",
        default=None,
        help="require `Authorization: Bearer KEY` (default: $AGENTRT_API_KEY; none if unset)",
    )
    p.add_argument("--served-model-name", default=None, help="model id clients name")
    p.add_argument(
        "--max-body-bytes", type=positive_int, default=4 << 20, help="body limit (4 MiB)"
    )
    p.add_argument(
        "--max-prompt-tokens", type=positive_int, default=None, help="prompt limit (context)"
    )
    p.add_argument("--max-pending", type=positive_int, default=512, help="requests in flight (512)")
    p.add_argument("--grace-seconds", type=positive_float, default=30.0, help="SIGTERM grace (30)")
    p.add_argument(
        "--pin-budget",
        type=fraction,
        default=0.25,
        help="share of the device KV pool that tool-call pauses may hold pinned (0.25)",
    )
    p.add_argument(
        "--pin-rule",
        choices=PIN_RULES,
        default="cost",
        help="cost: pin for the TTL whose expected reload saving outweighs the pool share "
        "held; pause: pin every pause that fits the budget, for its expected length (cost)",
    )
    p.add_argument(
        "--arrival-wait-ms",
        type=nonneg_float,
        default=5.0,
        help="after a step that finished requests, wait at most this long for as many new "
        "ones before the next step, so a client's next request joins it (5)",
    )
    p.add_argument("--log-requests", action="store_true", help="uvicorn access log")
    p.set_defaults(func=_cmd_serve)


def add_bench_parser(bench_sub) -> None:
    from agentrt.serve.bench_cli import add_parser as add_bench

    add_bench(bench_sub, add_engine_flags)
