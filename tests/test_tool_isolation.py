"""A blocking tool, a hung agent or an agent that exits costs only its own workflow."""

from __future__ import annotations

import sys
import threading

import anyio
import pytest
from runtime_helpers import assert_kv_clean, tiny_engine, tiny_runtime

from agentrt.graph.decorators import Workflow
from agentrt.scheduler.errors import AgentExitError, AgentTimeoutError, WorkflowTimeoutError

pytestmark = pytest.mark.anyio

WAIT_S = 30  # how long a blocked tool waits at most: far longer than any of these tests


@pytest.fixture
def anyio_backend():
    return "asyncio"


def answering(name: str = "answer") -> Workflow:
    wf = Workflow(name)

    @wf.agent(prefix="Answer briefly.", max_tokens=5, ignore_eos=True)
    async def answer(ctx):
        return await ctx.gen(f"question {ctx.input}")

    return wf


async def wait_for(event: threading.Event) -> None:
    while not event.is_set():
        await anyio.sleep(0.005)


async def test_blocking_tool_does_not_freeze_other_workflows(tiny_models):
    """The worker finishes a model call while the sleeper's tool is still blocked; on
    the event loop the tool would block the loop and time out instead."""
    entered, release = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def blocking_tool() -> bool:
        seen["tool_thread"] = threading.get_ident() != loop_thread
        entered.set()
        return release.wait(WAIT_S)  # a plain blocking call, like time.sleep or HTTP

    sleeper = Workflow("sleeper")

    @sleeper.agent()
    async def sleep(ctx):
        return await ctx.tool(blocking_tool)

    worker = Workflow("worker")

    @worker.agent(prefix="Work.", max_tokens=4, ignore_eos=True)
    async def work(ctx):
        await wait_for(entered)
        text = await ctx.gen("do it")
        seen["worker_done_while_tool_blocked"] = not release.is_set()
        release.set()
        return text

    loop_thread = threading.get_ident()
    engine = tiny_engine(tiny_models)
    async with tiny_runtime(engine) as rt, rt:
        slow = rt.submit(sleeper, None)
        fast = rt.submit(worker, None)
        fast_result, slow_result = await fast.wait(), await slow.wait()
    assert fast_result.ok and slow_result.ok, (fast_result.error, slow_result.error)
    assert slow_result.output is True  # released by the worker, not by the wait's limit
    assert seen == {"tool_thread": True, "worker_done_while_tool_blocked": True}


async def test_many_blocked_tools_leave_the_engine_its_threads(tiny_models):
    """More blocked tools than anyio's default thread pool (40): tools have a pool of
    their own, so the engine still steps and the worker's call completes."""
    release = threading.Event()
    blocked = 0
    lock = threading.Lock()

    def blocking_tool() -> bool:
        nonlocal blocked
        with lock:
            blocked += 1
        return release.wait(WAIT_S)

    sleepers = Workflow("sleepers")

    @sleepers.agent()
    async def sleep(ctx):
        return await ctx.tool(blocking_tool)

    worker = Workflow("worker")

    @worker.agent(prefix="Work.", max_tokens=3, ignore_eos=True)
    async def work(ctx):
        while blocked < 45:
            await anyio.sleep(0.005)
        text = await ctx.gen("go")
        release.set()
        return text

    async with tiny_runtime(tiny_engine(tiny_models)) as rt, rt:
        handles = [rt.submit(sleepers, i) for i in range(45)]
        result = await rt.submit(worker, None).wait()
        others = [await h.wait() for h in handles]
    assert result.ok, result.error
    assert all(r.ok and r.output is True for r in others)


async def test_async_tools_run_on_the_loop_and_plain_ones_off_it(tiny_models):
    loop_thread = threading.get_ident()

    async def async_tool(x):
        return threading.get_ident(), x

    def plain_tool(x, *, y):
        return threading.get_ident(), x + y

    wf = Workflow("tools")

    @wf.agent()
    async def use(ctx):
        return [await ctx.tool(async_tool, 1), await ctx.tool(plain_tool, 1, y=2)]

    async with tiny_runtime(tiny_engine(tiny_models)) as rt:
        (result,) = await rt.run(wf, [None])
    (t_async, one), (t_plain, three) = result.output
    assert (one, three) == (1, 3)
    assert t_async == loop_thread and t_plain != loop_thread


@pytest.mark.parametrize("hang", ["blocking_tool", "await_forever"])
async def test_hung_agent_times_out_alone(tiny_models, hang):
    """An agent past its `timeout=` fails its workflow with a clear error; the
    workflows running beside it give the outputs they give without it."""
    release = threading.Event()
    hung = Workflow("hung")

    @hung.agent(timeout=0.3)
    async def stuck(ctx):
        if hang == "blocking_tool":
            await ctx.tool(release.wait, WAIT_S)  # blocks a thread, never returns in time
        else:
            await anyio.sleep_forever()

    others = answering()
    engine = tiny_engine(tiny_models)
    try:
        async with tiny_runtime(engine) as rt, rt:
            stuck_run = rt.submit(hung, None)
            handles = [rt.submit(others, x) for x in ("a", "b")]
            results = [await h.wait() for h in handles]
            failed = await stuck_run.wait()
    finally:
        release.set()
    async with tiny_runtime(engine) as rt:
        baseline = await rt.run(others, ["a", "b"])
    assert isinstance(failed.error, AgentTimeoutError)
    assert str(failed.error) == "agent 'stuck' of workflow hung-1 ran past its timeout of 0.3 s"
    assert all(r.ok for r in results)
    assert [r.output for r in results] == [r.output for r in baseline]
    assert_kv_clean(engine)


async def test_workflow_timeout_aborts_its_model_calls(tiny_models):
    """A workflow past the `timeout=` of `run` fails with WorkflowTimeoutError while its
    long generation is in flight; the request is aborted and its KV released."""
    engine = tiny_engine(tiny_models)
    wf = Workflow("long")

    @wf.agent(prefix="Talk a lot.", max_tokens=480, ignore_eos=True)
    async def talker(ctx):
        return await ctx.gen(ctx.input)

    quick = answering()
    async with tiny_runtime(engine) as rt, rt:
        doomed = rt.submit(wf, "x", timeout=0.03)
        other = rt.submit(quick, "y")
        timed_out, finished = await doomed.wait(), await other.wait()
        # aborts take effect at the engine's next step (`LLMEngine.abort`): step once more
        assert (await rt.submit(quick, "z").wait()).ok
    assert isinstance(timed_out.error, WorkflowTimeoutError)
    assert "ran past its timeout of 0.03 s" in str(timed_out.error)
    assert timed_out.llm_calls == 1 and "talker" not in timed_out.results
    assert engine.stats.generated_tokens < 480 + 5  # the long call was cut short
    assert finished.ok
    assert_kv_clean(engine)


class Fatal(BaseException):
    """Not an Exception: escapes `except Exception`."""


def exit_now() -> None:
    sys.exit(3)


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("exit", "agent 'agent' called sys.exit(3)"),
        ("exit_in_tool", "agent 'agent' called sys.exit(3)"),
        ("interrupt", "agent 'agent' raised KeyboardInterrupt"),
        ("fatal", "agent 'agent' raised Fatal: deep trouble"),
        ("cancelled", "agent 'agent' raised CancelledError"),  # by itself, not cancelled
    ],
)
async def test_exit_or_base_exception_fails_only_its_workflow(tiny_models, how, message):
    wf = Workflow("exiting")

    @wf.agent(prefix="Answer.", max_tokens=3, ignore_eos=True)
    async def agent(ctx):
        if ctx.input == "exit":
            sys.exit(3)
        if ctx.input == "exit_in_tool":
            await ctx.tool(exit_now)
        if ctx.input == "interrupt":
            raise KeyboardInterrupt
        if ctx.input == "fatal":
            raise Fatal("deep trouble")
        if ctx.input == "cancelled":
            raise anyio.get_cancelled_exc_class()
        return await ctx.gen(ctx.input)

    engine = tiny_engine(tiny_models)
    async with tiny_runtime(engine) as rt, rt:
        results = [await h.wait() for h in [rt.submit(wf, x) for x in ("a", how, "b")]]
        after = await rt.submit(wf, "c").wait()  # the runtime still runs
    assert [r.ok for r in results] == [True, False, True] and after.ok
    error = results[1].error
    assert isinstance(error, AgentExitError) and str(error).startswith(message)
    assert_kv_clean(engine)
