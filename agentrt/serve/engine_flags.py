"""The engine flags `agentrt serve` and `agentrt bench serve` share, and the engine they
build."""

from __future__ import annotations

import argparse

from agentrt.cli_types import add_host_load_flag, nonneg_int, positive_int
from agentrt.engine.config import EngineConfig


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


def engine_argv(args: argparse.Namespace) -> list[str]:
    """The `agentrt serve` flags that build the engine `args` describes."""
    flags = ["model", "device", "dtype", "backend", "profile", "kv_cache_tokens", "page_size"]
    flags += ["max_num_seqs", "max_num_batched_tokens", "eviction_policy"]
    flags += ["host_kv_cache_tokens", "seed"]
    argv = []
    for name in flags:
        value = vars(args)[name]
        if value is not None:
            argv += ["--" + name.replace("_", "-"), str(value)]
    if args.batch_invariant:
        argv.append("--batch-invariant")
    if args.recompute_when_no_room:
        argv.append("--recompute-when-no-room")
    return argv
