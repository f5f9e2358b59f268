"""Every tensor operation of the built-in engine runs on one thread, whoever calls."""

from __future__ import annotations

import multiprocessing
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
from engine_helpers import make_engine, run_to_completion

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.compute_thread import is_compute_thread, on_compute_thread
from agentrt.engine.llm_engine import LLMEngine
from agentrt.engine.runner import ModelRunner
from agentrt.engine.sampling_params import SamplingParams


class ThreadRecorder(ModelRunner):
    """Wraps a runner; remembers the thread of every `execute`."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.uses_compute_thread = inner.uses_compute_thread
        self.threads: set[str] = set()

    def execute(self, batch):
        self.threads.add(threading.current_thread().name)
        return self.inner.execute(batch)

    def forget(self, request_id: str) -> None:
        self.inner.forget(request_id)


def test_on_compute_thread_runs_inline_there_and_propagates_errors() -> None:
    name = on_compute_thread(lambda: threading.current_thread().name)
    assert name.startswith("agentrt-compute")
    assert on_compute_thread(lambda: on_compute_thread(is_compute_thread))  # no deadlock
    assert not is_compute_thread()

    def boom() -> None:
        raise ValueError("from the compute thread")

    with pytest.raises(ValueError, match="from the compute thread"):
        on_compute_thread(boom)


def test_steps_from_main_worker_and_event_loop_share_one_thread(tiny_models) -> None:
    engine = make_engine(tiny_models["llama"])
    recorder = ThreadRecorder(engine.runner)
    engine.runner = recorder
    params = SamplingParams(max_tokens=3, ignore_eos=True)
    first = run_to_completion(engine, [[5, 6, 7]], params)
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(run_to_completion, engine, [[5, 6, 7]], params).result()

    async def via_async_llm() -> list[int]:
        async with AsyncLLM(engine) as llm:
            return (await llm.complete([5, 6, 7], params)).token_ids

    third = anyio.run(via_async_llm)
    assert first[0].token_ids == second[0].token_ids == third
    assert len(recorder.threads) == 1
    assert next(iter(recorder.threads)).startswith("agentrt-compute")


class StepCallers(ModelRunner):
    """Wraps a runner; at every `execute`, names each thread with `LLMEngine.step` on its
    stack: the step's own thread and any thread blocked waiting for it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.uses_compute_thread = inner.uses_compute_thread
        self.seen: list[list[str]] = []

    def execute(self, batch):
        names = {t.ident: t.name for t in threading.enumerate()}
        callers = []
        for ident, frame in sys._current_frames().items():
            while frame is not None and frame.f_code is not LLMEngine.step.__code__:
                frame = frame.f_back
            if frame is not None:
                callers.append(names.get(ident, "?"))
        self.seen.append(callers)
        return self.inner.execute(batch)

    def forget(self, request_id: str) -> None:
        self.inner.forget(request_id)


def test_an_async_llm_step_is_one_hop_onto_the_compute_thread(tiny_models) -> None:
    engine = make_engine(tiny_models["llama"])
    engine.runner = callers = StepCallers(engine.runner)
    params = SamplingParams(max_tokens=3, ignore_eos=True)

    async def main() -> None:
        async with AsyncLLM(engine) as llm:
            await llm.complete([5, 6, 7], params)

    anyio.run(main)
    assert callers.seen
    for names in callers.seen:  # no worker thread sits waiting on the compute thread
        assert len(names) == 1 and names[0].startswith("agentrt-compute"), names


def _name_on_compute_thread(_: int) -> str:
    return on_compute_thread(lambda: threading.current_thread().name)


def test_a_forked_child_gets_its_own_compute_thread() -> None:
    on_compute_thread(lambda: None)  # the parent's thread exists before the fork
    with multiprocessing.get_context("fork").Pool(1) as pool:
        names = pool.map_async(_name_on_compute_thread, [0]).get(timeout=60)  # hangs if broken
    assert names[0].startswith("agentrt-compute")
