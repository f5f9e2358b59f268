"""The `agentrt run` subcommand: its options, what it prints and what `--json` keeps.

It prints each workflow's input with its output (or why it failed) and a summary table;
`--json` keeps every agent's result. Exit status: 0 when every workflow succeeded, 1 when
any failed, 2 when the file or a setting is wrong (one line on stderr).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from agentrt.cli_types import add_common_flags, positive_float
from agentrt.output_files import JSONL, output_path
from agentrt.remote.cli_flags import add_remote_flags, remote_settings
from agentrt.report import format_table, write_json
from agentrt.scheduler.errors import describe
from agentrt.scheduler.priority import priority_names
from agentrt.scheduler.runtime import WorkflowResult


def add_run_parser(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="run a workflow file",
        description="Run a Python file that defines `workflow` (an agentrt.Workflow) and "
        "`inputs` (one instance per input), or an async `main(runtime)`.",
    )
    run.add_argument("file", help="path to the workflow file, e.g. examples/pipeline.py")
    add_common_flags(run)
    run.add_argument(
        "--backend",
        choices=("builtin", "sim", "openai"),
        default="builtin",
        help="built-in engine, the cost model, or a running OpenAI-compatible server at "
        "--base-url (builtin)",
    )
    add_remote_flags(run, served_model=False)  # --model names the served model
    run.add_argument("--profile", help="cost profile of the sim backend")
    run.add_argument("--barrier", action="store_true", help="global step barrier (baseline)")
    run.add_argument(
        "--priority", default="fifo", help=f"ready-call order: {', '.join(priority_names())} (fifo)"
    )
    run.add_argument(
        "--trace", metavar="PATH.jsonl", type=output_path(JSONL), help="record calls as JSONL"
    )
    run.add_argument(
        "--timeout", type=positive_float, metavar="S", help="seconds each workflow may take"
    )
    run.add_argument("--stream", metavar="AGENT", help="print this agent's tokens as they come")
    run.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="progress bar (default: only on a terminal)",
    )
    run.set_defaults(func=cmd_run)


def _remote(args: argparse.Namespace) -> dict | None:
    if args.backend != "openai":
        return None
    settings = remote_settings(args, "run", args.model)
    remote = {k: v for k, v in vars(settings).items() if v is not None and k != "model"}
    if args.tokenizer:
        remote["tokenizer"] = args.tokenizer
    return remote


def cmd_run(args: argparse.Namespace) -> int:
    from agentrt.run_file import run_workflow_file

    results, wall = run_workflow_file(
        args.file,
        model=args.model,
        device=args.device,
        backend=args.backend,
        profile=args.profile,
        barrier=args.barrier,
        priority=args.priority,
        trace=args.trace,
        timeout=args.timeout,
        progress=args.progress,
        stream=args.stream,
        remote=_remote(args),
    )
    for r in results:
        print_result(r)
    summary = {
        "file": str(args.file),
        "workflows": len(results),
        "failed": sum(not r.ok for r in results),
        "llm_calls": sum(r.llm_calls for r in results),
        "wall_s": wall,
    }
    rows = [(k, summary[k]) for k in ("workflows", "failed", "llm_calls", "wall_s")]
    print(format_table(f"agentrt run {Path(args.file).name}", ["metric", "value"], rows))
    write_json(args.json, {**summary, "results": [result_json(r) for r in results]})
    return 0 if summary["failed"] == 0 else 1


def print_result(r: WorkflowResult) -> None:
    """`[id] input: ...` then the output (a line per exit agent, its further lines
    indented under it), or why it failed."""
    print(f"[{r.workflow_id}] input: {_short(r.input)}")
    if not r.ok:
        print(f"  FAILED: {describe(r.error) if r.error is not None else 'unknown error'}")
        return
    output = r.output if isinstance(r.output, dict) else {"output": r.output}
    for key, value in output.items():
        print(f"  {key}: {output_text(value)}")


def output_text(value: Any) -> str:
    """An agent's output as printed: stripped, its further lines indented by four."""
    return str(value).strip().replace("\n", "\n    ")


def result_json(r: WorkflowResult) -> dict[str, Any]:
    return {
        "workflow_id": r.workflow_id,
        "ok": r.ok,
        "input": _jsonable(r.input),
        "output": _jsonable(r.output),
        "results": _jsonable(r.results),
        "error": describe(r.error) if r.error is not None else None,
        "llm_calls": r.llm_calls,
        "seconds": r.seconds,
    }


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)


def _short(value: Any, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
