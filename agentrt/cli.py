"""The `agentrt` command."""

from __future__ import annotations

import argparse
import sys

from agentrt.bench import cli as bench_cli
from agentrt.bench import kvflow_cli
from agentrt.cli_types import add_common_flags, positive_int
from agentrt.interrupts import Terminated, exit_status, interrupts_deferred, sigterm_raises
from agentrt.output_files import JSON, atomic_write_text, output_path
from agentrt.report import format_table, write_json
from agentrt.run_cli import add_run_parser
from agentrt.serve import bench_cli as serve_bench_cli
from agentrt.serve import cli as serve_cli
from agentrt.simulation import simulate_cli
from agentrt.trace.replay_cli import add_replay_parser


def _cmd_demo(args: argparse.Namespace) -> int:
    from agentrt.demo import run_demo

    write_json(args.json, run_demo(args.model, args.device, args.max_tokens))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from agentrt.engine.cost_model.calibrate import calibrate, summary_rows

    profile, fit, samples = calibrate(args.model, args.device, args.repeats, args.name)
    title = f"Calibration: {len(samples)} engine steps, measured vs fitted"
    header = ["workload: steps", "steps", "measured ms", "fitted ms", "error"]
    print(format_table(title, header, summary_rows(samples, fit)))
    coef = [(k, v * 1e6) for k, v in fit.coef.items()]
    print(format_table("Fitted coefficients (microseconds per unit)", ["term", "us"], coef))
    print(
        f"per-step relative error: mean {100 * fit.mean_abs_relative_error:.1f}%, "
        f"max {100 * fit.max_abs_relative_error:.1f}%"
    )
    atomic_write_text(args.out, profile.to_json())
    print(f"wrote {args.out}")
    write_json(
        args.json,
        {
            "profile": profile.model_dump(),
            "samples": [
                {
                    "label": s.label,
                    "features": s.features._asdict(),
                    "measured_s": s.seconds,
                    "fitted_s": p,
                }
                for s, p in zip(samples, fit.predicted_s, strict=True)
            ],
        },
    )
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
    add_common_flags(demo)
    demo.add_argument("--max-tokens", type=positive_int, default=48, help="tokens per answer (48)")
    demo.set_defaults(func=_cmd_demo)

    bench = sub.add_parser("bench", help="benchmarks (each against a baseline in the same run)")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    bench_cli.add_bench_parsers(bench_sub)
    kvflow_cli.add_parser(bench_sub)

    cal = sub.add_parser(
        "calibrate",
        help="measure the built-in engine and fit a cost profile for the sim backend",
        description="Times prefill chunks and decode steps of the built-in engine on this "
        "machine, fits the cost profile by least squares, prints measured vs fitted and "
        "writes the profile (load it with EngineConfig(backend='sim', profile=PATH)).",
    )
    add_common_flags(cal)
    cal.add_argument(
        "--out",
        metavar="PATH.json",
        type=output_path(JSON),
        default="cpu-profile.json",
        help="profile file (cpu-profile.json)",
    )
    cal.add_argument("--name", default="calibrated", help="profile name stored in the file")
    cal.add_argument(
        "--repeats", type=positive_int, default=2, help="runs per workload, min kept (2)"
    )
    cal.set_defaults(func=_cmd_calibrate)

    add_run_parser(sub)
    add_replay_parser(sub)
    simulate_cli.add_parser(sub)
    serve_cli.add_parser(sub)
    serve_bench_cli.add_parser(bench_sub)
    return parser


def _runs_torch(args: argparse.Namespace) -> bool:
    """Whether the command runs the built-in (torch) engine: every command but `bench
    tracker`, `bench sim --speed-only` and those run on ``--backend sim``."""
    bench = vars(args).get("bench")
    if bench == "tracker" or (bench == "sim" and args.speed_only):
        return False
    return vars(args).get("backend", "builtin") != "sim"


def main(argv: list[str] | None = None) -> int:
    """Run one command. Bad arguments exit 2 (argparse) or return 2 (found later, before
    the work), other I/O errors return 1; Ctrl-C returns 130 and SIGTERM 143. Each of
    these prints one line on stderr."""
    with sigterm_raises():
        try:
            args = build_parser().parse_args(argv)
            if _runs_torch(args):  # load the torch side whole, first: a Ctrl-C during
                with interrupts_deferred():  # an import would leave it half-initialised
                    import agentrt.engine.torch_engine  # noqa: F401
            return args.func(args)
        except (ValueError, FileNotFoundError) as exc:
            print(f"agentrt: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:  # e.g. a full disk while writing the results
            print(f"agentrt: error: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as interrupt:
            name = "SIGTERM" if isinstance(interrupt, Terminated) else "SIGINT"
            print(f"agentrt: interrupted by {name}", file=sys.stderr)
            return exit_status(interrupt)


if __name__ == "__main__":
    sys.exit(main())
