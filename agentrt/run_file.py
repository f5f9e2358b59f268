"""`agentrt run FILE`: load a workflow file and run it on the built-in engine or the sim.

A file defines `workflow` (an `agentrt.Workflow`) and `inputs` (one instance per input),
or an async `main(runtime)` returning its `WorkflowResult`s. What can be checked before
the model loads is. A file that cannot run raises `WorkflowFileError` (one line); a
workflow that fails is a failed result, not an error.
"""

from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import anyio

from agentrt.api import open_runtime
from agentrt.graph.agent_options import check_timeout
from agentrt.graph.decorators import Workflow
from agentrt.progress import workflow_progress
from agentrt.scheduler.errors import describe
from agentrt.scheduler.runtime import TokenDelta, WorkflowResult


class WorkflowFileError(ValueError):
    """The workflow file cannot be loaded or run (the message says where and why)."""


def load_workflow_file(path: str | Path) -> Any:
    """Import the file as a module; any error while importing it (a bad declaration,
    `sys.exit()`) becomes a `WorkflowFileError` naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no workflow file at {path}")
    spec = importlib.util.spec_from_file_location(f"agentrt_user_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        raise WorkflowFileError(f"{_where(path, exc)}: {describe(exc)}") from exc
    workflow = getattr(module, "workflow", None)
    if not callable(getattr(module, "main", None)) and not isinstance(workflow, Workflow):
        raise WorkflowFileError(
            f"{path} must define `workflow = agentrt.Workflow(...)` and `inputs`, "
            "or an async `main(runtime)`"
        )
    return module


def _where(path: Path, exc: BaseException) -> str:
    """`path:line` of the file's deepest frame in the traceback (or of a syntax error)."""
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{path}:{exc.lineno}"
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
    return f"{path}:{lines[-1]}" if lines else str(path)


class StreamPrinter:
    """Writes the tokens of one agent's model calls as they come, each call whole under
    its tag: one call streams live; calls running beside it are held back and written
    (caught up, then live) when it finishes."""

    def __init__(self, agent: str, out: TextIO | None = None) -> None:
        self.agent = agent
        self.out = out or sys.stdout
        self._live: str | None = None
        self._held: dict[str, list[str]] = {}  # call id -> text so far (insertion order)
        self._done: set[str] = set()

    def __call__(self, delta: TokenDelta) -> None:
        if delta.agent != self.agent:
            return
        if self._live is None:
            self._live = delta.call_id
            self.out.write(f"[{delta.call_id}] ")
        if delta.call_id == self._live:
            self.out.write(delta.text)
            if delta.finished:
                self.out.write("\n")
                self._live = None
                self._catch_up()
        else:
            self._held.setdefault(delta.call_id, []).append(delta.text)
            if delta.finished:
                self._done.add(delta.call_id)
        self.out.flush()

    def _catch_up(self) -> None:
        """Write held calls: finished ones whole, then the first unfinished one goes live."""
        for call_id in list(self._held):
            text = "".join(self._held.pop(call_id))
            self.out.write(f"[{call_id}] {text}")
            if call_id not in self._done:
                self._live = call_id
                return
            self._done.discard(call_id)
            self.out.write("\n")


def run_workflow_file(
    path: str | Path,
    *,
    model: str | None = None,
    device: str = "cpu",
    backend: str = "builtin",
    profile: str | None = None,
    barrier: bool = False,
    priority: str = "fifo",
    trace: str | None = None,
    timeout: float | None = None,
    progress: bool | None = None,
    stream: str | None = None,
    remote: dict[str, Any] | None = None,
) -> tuple[list[WorkflowResult], float]:
    """Run the file; returns its results (input order) and the wall time in seconds.
    `stream`: print this agent's tokens as they come (the progress bar is then off).
    `remote`: with `backend="openai"`, the server's settings (`base_url`, ...: see
    `api.open_runtime`)."""
    check_timeout("--timeout", timeout)
    module = load_workflow_file(path)
    workflow: Workflow | None = None if callable(getattr(module, "main", None)) else module.workflow
    if workflow is not None:
        try:
            _ = workflow.graph  # a declaration problem left open fails here, before loading
        except ValueError as exc:
            raise WorkflowFileError(f"{path}: {describe(exc)}") from exc
        if stream is not None and stream not in workflow.functions:
            known = ", ".join(workflow.functions)
            raise WorkflowFileError(f"--stream {stream!r}: no such agent; agents: {known}")
    on_tokens: Callable[[TokenDelta], None] | None = None
    if stream is not None:
        on_tokens, progress = StreamPrinter(stream), False
    if backend == "openai":
        engine_config: dict[str, Any] = {"backend": backend, "model": model, **(remote or {})}
    else:
        engine_config = {"model": model, "device": device, "backend": backend}
    if profile is not None:
        engine_config["profile"] = profile

    async def main() -> list[WorkflowResult]:
        async with open_runtime(
            barrier=barrier, priority=priority, trace=trace, on_tokens=on_tokens, **engine_config
        ) as rt:
            if workflow is None:
                async with workflow_progress(rt, None, progress):
                    return list(await module.main(rt) or [])
            inputs = list(getattr(module, "inputs", [None]))
            async with workflow_progress(rt, len(inputs), progress):
                handles = [rt.submit(workflow, x, timeout=timeout) for x in inputs]
                return [await h.wait() for h in handles]

    start = time.perf_counter()
    try:
        results = anyio.run(main)
    except ValueError:
        raise  # a bad setting (device, priority, profile): its message is the line
    except Exception as exc:
        raise WorkflowFileError(f"{path}: {describe(exc)}") from exc
    return results, time.perf_counter() - start
