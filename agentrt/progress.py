"""A progress bar over a runtime's workflows: done / total, LLM calls, output tokens/s.

`progress=None` shows it only when stderr is a terminal (tqdm's `disable=None`);
`True` / `False` force it on / off.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from tqdm import tqdm

from agentrt.scheduler.runtime import Runtime

REFRESH_S = 0.5


@asynccontextmanager
async def workflow_progress(
    runtime: Runtime, total: int | None, progress: bool | None = None
) -> AsyncIterator[tqdm]:
    """Show a bar while the body runs; it counts the workflows `runtime` finishes."""
    bar = tqdm(
        total=total,
        desc="workflows",
        unit="wf",
        disable=None if progress is None else not progress,
        dynamic_ncols=True,
    )
    base = runtime.stats.workflows_done
    start = time.perf_counter()

    def show() -> None:
        stats = runtime.stats
        elapsed = max(time.perf_counter() - start, 1e-9)
        bar.n = stats.workflows_done - base
        bar.set_postfix(
            calls=stats.llm_calls, tok_s=f"{stats.output_tokens / elapsed:.1f}", refresh=False
        )
        bar.refresh()

    async def tick() -> None:
        while True:
            show()
            await anyio.sleep(REFRESH_S)

    try:
        async with anyio.create_task_group() as tg:
            if not bar.disable:
                tg.start_soon(tick)
            yield bar
            tg.cancel_scope.cancel()
        if not bar.disable:
            show()
    finally:
        bar.close()
