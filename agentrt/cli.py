"""The `agentrt` command."""

from __future__ import annotations

import argparse
import sys

from agentrt.bench.report import format_table, write_json


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=None,
        help="HF model directory, .gguf file or hub id (default: embedded SmolLM2-135M-Instruct)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    parser.add_argument("--json", metavar="PATH", default=None, help="write results as JSON")


def _cmd_demo(args: argparse.Namespace) -> int:
    from agentrt.demo import run_demo

    write_json(args.json, run_demo(args.model, args.device, args.max_tokens))
    return 0


def _cmd_bench_engine(args: argparse.Namespace) -> int:
    from agentrt.bench.engine_bench import run_engine_bench

    result = run_engine_bench(
        args.model, args.device, args.dtype, args.repeats, args.max_num_batched_tokens
    )
    rows = [
        (c["name"], c["hf_tok_s"], c["agentrt_tok_s"], f"{c['ratio']:.2f}x")
        for c in result["cases"]
    ]
    print(
        format_table(
            f"Engine vs HF generate ({result['model']}, {result['device']}, {result['dtype']})",
            ["case", "HF tok/s", "agentrt tok/s", "ratio"],
            rows,
        )
    )
    extra = [
        ("TTFT cold, 2,000-token prefix (ms)", result["ttft_cold_ms"]),
        ("TTFT cached prefix (ms)", result["ttft_cached_ms"]),
        ("cached / cold", result["ttft_cached_over_cold"]),
        ("decode step, batch 1 (ms)", result["decode_step_ms"]),
        ("weights read per step (MB)", result["weight_bytes"] / 1e6),
        ("copy bandwidth (GB/s)", result["copy_bandwidth_gbs"]),
        ("bandwidth-bound step (ms)", result["roofline_step_ms"]),
        ("roofline fraction", result["roofline_fraction"]),
    ]
    print(format_table("Prefix cache and roofline", ["metric", "value"], extra))
    write_json(args.json, result)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentrt",
        description="Agentic workflow runtime with KV-aware scheduling and a built-in engine.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="multi-agent demo on the default model",
        description="Town agents with a long shared system prompt answer questions in one "
        "batch; prints the answers and what the engine did (prefill computed vs. reused).",
    )
    _add_common(demo)
    demo.add_argument("--max-tokens", type=int, default=48, help="tokens per answer (48)")
    demo.set_defaults(func=_cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks (each against a baseline in the same run)")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    engine = bench_sub.add_parser(
        "engine",
        help="our engine vs HF transformers generate",
        description="Batch-1 decode, a mixed batch of 16 and cached vs. cold TTFT, against "
        "HF transformers generate on the same model, dtype and machine.",
    )
    _add_common(engine)
    engine.add_argument("--dtype", default="auto", help="auto (bfloat16), float32, bfloat16")
    engine.add_argument("--repeats", type=int, default=2, help="best of N runs per case (2)")
    engine.add_argument(
        "--max-num-batched-tokens", type=int, default=1024, help="per-step token budget (1024)"
    )
    engine.set_defaults(func=_cmd_bench_engine)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"agentrt: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
