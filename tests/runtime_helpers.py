"""Runtime tests run real workflows on a tiny model's engine."""

from __future__ import annotations

from contextlib import asynccontextmanager

from engine_helpers import ByteTokenizer, make_engine

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.prompt import PromptBuilder
from agentrt.scheduler.runtime import Runtime


def tiny_engine(tiny_models, **overrides):
    engine = make_engine(tiny_models["llama"], **overrides)
    engine.tokenizer = ByteTokenizer()
    return engine


@asynccontextmanager
async def tiny_runtime(engine, **runtime_options):
    async with AsyncLLM(engine) as llm:
        yield Runtime(llm, PromptBuilder(engine.tokenizer), **runtime_options)


def assert_kv_clean(engine) -> None:
    """Nothing in flight, nothing locked, every page accounted for."""
    assert not engine.has_unfinished_requests()
    engine.check_integrity()
    tree = engine.kv.tree
    assert tree.evictable_pages == tree.cached_pages, "pages left locked"
