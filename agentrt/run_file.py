"""`agentrt run FILE`: load a workflow file and run it on the built-in engine."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import anyio

from agentrt.api import open_runtime
from agentrt.graph.decorators import Workflow
from agentrt.report import format_table


def load_workflow_file(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no workflow file at {path}")
    spec = importlib.util.spec_from_file_location(f"agentrt_user_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    has_main = callable(getattr(module, "main", None))
    if not has_main and not isinstance(getattr(module, "workflow", None), Workflow):
        raise ValueError(
            f"{path} must define `workflow = agentrt.Workflow(...)` and `inputs`, "
            "or an async `main(runtime)`"
        )
    return module


def run_workflow_file(
    path: str | Path,
    *,
    model: str | None = None,
    device: str = "cpu",
    barrier: bool = False,
    priority: str = "fifo",
    trace: str | None = None,
) -> dict:
    module = load_workflow_file(path)

    async def main() -> list:
        async with open_runtime(
            model=model, device=device, barrier=barrier, priority=priority, trace=trace
        ) as rt:
            if callable(getattr(module, "main", None)):
                return list(await module.main(rt) or [])
            handles = [rt.submit(module.workflow, x) for x in getattr(module, "inputs", [None])]
            return [await h.wait() for h in handles]

    start = time.perf_counter()
    results = anyio.run(main)
    wall = time.perf_counter() - start
    for r in results:
        status = "ok" if r.ok else f"FAILED: {r.error!r}"
        print(f"[{r.workflow_id}] {status}")
        if r.ok:
            output = r.output if isinstance(r.output, dict) else {"output": r.output}
            for key, value in output.items():
                print(f"  {key}: {str(value).strip()}")
    rows = [
        ("workflows", len(results)),
        ("failed", sum(not r.ok for r in results)),
        ("LLM calls", sum(r.llm_calls for r in results)),
        ("wall time (s)", wall),
    ]
    print(format_table(f"agentrt run {Path(path).name}", ["metric", "value"], rows))
    return {
        "file": str(path),
        "workflows": len(results),
        "failed": sum(not r.ok for r in results),
        "llm_calls": sum(r.llm_calls for r in results),
        "wall_s": wall,
        "results": [
            {"workflow_id": r.workflow_id, "ok": r.ok, "output": r.output, "error": repr(r.error)}
            for r in results
        ],
    }
