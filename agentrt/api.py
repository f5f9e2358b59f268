"""One-call entry points: build the engine, the async front and the runtime together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.prompt import PromptBuilder
from agentrt.graph.agent_options import check_timeout
from agentrt.graph.decorators import Workflow
from agentrt.progress import workflow_progress
from agentrt.scheduler.priority import make_priority
from agentrt.scheduler.runtime import Runtime, TokenDelta, WorkflowResult


@asynccontextmanager
async def open_runtime(
    engine: LLMEngine | None = None,
    *,
    priority: str = "fifo",
    barrier: bool = False,
    trace: str | Path | None = None,
    on_tokens: Callable[[TokenDelta], None] | None = None,
    **engine_config: Any,
) -> AsyncIterator[Runtime]:
    """`async with open_runtime() as rt:` a runtime on the built-in engine (default model
    unless `model=` is given; `backend="sim"` for the cost model; `backend="openai"` with
    `base_url=` for a running OpenAI-compatible server), ready for `rt.submit(...)`.
    Settings are checked before any model loads."""
    make_priority(priority)  # an unknown name fails here, not after loading
    async with AsyncExitStack() as stack:
        if engine_config.get("backend") == "openai":
            llm, tokenizer = await _remote_client(stack, engine_config)
        else:
            engine = engine or LLMEngine.from_config(EngineConfig(**engine_config))
            llm = await stack.enter_async_context(AsyncLLM(engine))
            tokenizer = engine.ensure_tokenizer()
        runtime = Runtime(
            llm,
            PromptBuilder(tokenizer),
            priority=priority,
            barrier=barrier,
            trace=trace,
            on_tokens=on_tokens,
        )
        try:
            async with runtime.running():
                yield runtime
        finally:
            if runtime.trace is not None:
                runtime.trace.close()


REMOTE_OPTIONS = (
    "base_url", "model", "api_key_env", "server_kind", "max_in_flight", "timeout_s", "retries",
    "backoff_s",
)  # fmt: skip


async def _remote_client(stack: AsyncExitStack, options: dict[str, Any]):
    """`backend="openai"`: the runtime's client on a server at `base_url`, and the
    tokenizer its prompts are built with (`tokenizer=`: a model directory or hub id whose
    tokenizer matches the server's model; default: the embedded SmolLM2's)."""
    from agentrt.engine import loader
    from agentrt.remote import OpenAIBackend, RemoteSettings

    unknown = set(options) - {"backend", "tokenizer", *REMOTE_OPTIONS}
    if unknown:
        raise TypeError(f"backend='openai' takes no engine settings: {sorted(unknown)}")
    if "base_url" not in options:
        raise TypeError("backend='openai' needs base_url= (the server's URL)")
    settings = RemoteSettings(**{k: v for k, v in options.items() if k in REMOTE_OPTIONS})
    tokenizer = loader.load_tokenizer(loader.resolve_model_dir(options.get("tokenizer")))
    client = await stack.enter_async_context(OpenAIBackend(settings, tokenizer))
    return client, tokenizer


def run(
    workflow: Workflow,
    inputs: Iterable[Any],
    *,
    engine: LLMEngine | None = None,
    priority: str = "fifo",
    barrier: bool = False,
    trace: str | Path | None = None,
    timeout: float | None = None,
    progress: bool | None = None,
    **engine_config: Any,
) -> list[WorkflowResult]:
    """Run one instance of `workflow` per input on the built-in engine (or, with
    `backend="sim"`, the cost model); blocks until all finish. `timeout`: seconds each
    instance may take; `progress`: a progress bar (None: only on a terminal). Engine
    settings (`model=`, `device=`, `backend=`, ...) pass through to `EngineConfig`.
    A badly declared workflow fails before the model loads."""
    _ = workflow.graph
    check_timeout("workflow", timeout)
    inputs = list(inputs)

    async def main() -> list[WorkflowResult]:
        async with (
            open_runtime(
                engine, priority=priority, barrier=barrier, trace=trace, **engine_config
            ) as rt,
            workflow_progress(rt, len(inputs), progress),
        ):
            handles = [rt.submit(workflow, x, timeout=timeout) for x in inputs]
            return [await h.wait() for h in handles]

    return anyio.run(main)
