"""One-call entry points: build the engine, the async front and the runtime together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.prompt import PromptBuilder
from agentrt.graph.decorators import Workflow
from agentrt.scheduler.runtime import Runtime, WorkflowResult


@asynccontextmanager
async def open_runtime(
    engine: LLMEngine | None = None,
    *,
    priority: str = "fifo",
    barrier: bool = False,
    trace: str | Path | None = None,
    **engine_config: Any,
) -> AsyncIterator[Runtime]:
    """`async with open_runtime() as rt:` a runtime on the built-in engine (default model
    unless `model=` is given), ready for `rt.submit(...)`."""
    engine = engine or LLMEngine.from_config(EngineConfig(**engine_config))
    async with AsyncLLM(engine) as llm:
        runtime = Runtime(
            llm, PromptBuilder(engine.tokenizer), priority=priority, barrier=barrier, trace=trace
        )
        async with runtime:
            yield runtime
        if runtime.trace is not None:
            runtime.trace.close()


def run(
    workflow: Workflow,
    inputs: Iterable[Any],
    *,
    engine: LLMEngine | None = None,
    priority: str = "fifo",
    barrier: bool = False,
    trace: str | Path | None = None,
    **engine_config: Any,
) -> list[WorkflowResult]:
    """Run one instance of `workflow` per input on the built-in engine; blocks until all
    finish. Engine settings (`model=`, `device=`, ...) pass through to `EngineConfig`."""
    inputs = list(inputs)

    async def main() -> list[WorkflowResult]:
        async with open_runtime(
            engine, priority=priority, barrier=barrier, trace=trace, **engine_config
        ) as rt:
            handles = [rt.submit(workflow, x) for x in inputs]
            return [await h.wait() for h in handles]

    return anyio.run(main)
