"""The runtime: workflows on a real (tiny) engine, released out of order."""

from __future__ import annotations

import anyio
import pytest
from runtime_helpers import assert_kv_clean, tiny_engine, tiny_runtime

from agentrt.engine.async_llm import AsyncLLM
from agentrt.engine.sampling_params import SamplingParams
from agentrt.graph.decorators import Workflow
from agentrt.graph.errors import GraphError, UnboundedCycleError, UnknownAgentError
from agentrt.scheduler.errors import unwrap
from agentrt.scheduler.runtime import WorkflowCancelledError

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


def review_loop(events: list) -> Workflow:
    wf = Workflow("review")

    @wf.agent(prefix="You plan the work. " * 4, max_tokens=4, ignore_eos=True)
    async def planner(ctx):
        events.append(("planner", ctx.workflow_id))
        return await ctx.gen(f"task {ctx.input}")

    @wf.agent(prefix="You write code. " * 4, after=[planner], max_tokens=4, ignore_eos=True)
    async def coder(ctx):
        events.append(("coder", ctx.workflow_id, ctx.visit))
        return await ctx.gen(f"plan {ctx.results['planner']}")

    @wf.agent(
        prefix="You review code. " * 4,
        after=[coder],
        loop_to=coder,
        max_loops=2,
        max_tokens=4,
        ignore_eos=True,
    )
    async def reviewer(ctx):
        events.append(("reviewer", ctx.workflow_id, ctx.visit))
        verdict = await ctx.gen(f"code {ctx.results['coder']}")
        if ctx.visit < 3:
            ctx.goto("coder")
        return verdict

    return wf


async def test_bounded_loop_pipeline(tiny_models):
    engine = tiny_engine(tiny_models)
    events: list = []
    async with tiny_runtime(engine) as rt:
        (result,) = await rt.run(review_loop(events), ["sort a list"])
    assert result.ok, result.error
    assert [e[0] for e in events] == ["planner"] + ["coder", "reviewer"] * 3
    assert result.llm_calls == 7 and set(result.results) == {"planner", "coder", "reviewer"}
    assert result.output == result.results["reviewer"]
    assert_kv_clean(engine)


async def test_concurrent_instances_share_prefixes(tiny_models):
    engine = tiny_engine(tiny_models)
    async with tiny_runtime(engine) as rt:
        results = await rt.run(review_loop([]), [f"task {i}" for i in range(6)])
    assert all(r.ok for r in results)
    assert engine.stats.prefill_tokens_reused > 0
    assert max(engine.stats.batch_sizes) > 1
    assert_kv_clean(engine)


def slow_then_fast() -> tuple[Workflow, list]:
    """Workflow 'a' stalls in a tool at step 0; workflow 'b' does not."""
    starts: list = []
    wf = Workflow("oo")

    @wf.agent(prefix="first", max_tokens=2, ignore_eos=True)
    async def first(ctx):
        starts.append(("first", ctx.input, anyio.current_time()))
        if ctx.input == "a":
            await ctx.tool(anyio.sleep, 0.3)
        return await ctx.gen("go")

    @wf.agent(prefix="second", after=[first], max_tokens=2, ignore_eos=True)
    async def second(ctx):
        starts.append(("second", ctx.input, anyio.current_time()))
        return await ctx.gen("again")

    return wf, starts


def _started(starts, agent, inp):
    return next(t for a, i, t in starts if a == agent and i == inp)


async def test_out_of_order_release(tiny_models):
    wf, starts = slow_then_fast()
    async with tiny_runtime(tiny_engine(tiny_models)) as rt:
        await rt.run(wf, ["a", "b"])
    # b's step 1 starts while a is still at step 0 (no global barrier).
    assert _started(starts, "second", "b") < _started(starts, "first", "a") + 0.3


async def test_barrier_baseline_waits_for_the_step(tiny_models):
    wf, starts = slow_then_fast()
    async with tiny_runtime(tiny_engine(tiny_models), barrier=True) as rt:
        await rt.run(wf, ["a", "b"])
    assert _started(starts, "second", "b") >= _started(starts, "first", "a") + 0.3


async def test_failing_agent_fails_only_its_workflow(tiny_models):
    engine = tiny_engine(tiny_models)
    wf = Workflow("fragile")

    @wf.agent(prefix="p", max_tokens=3, ignore_eos=True)
    async def fetch(ctx):
        return await ctx.gen(ctx.input)

    @wf.agent(prefix="q", after=[fetch], max_tokens=30, ignore_eos=True)
    async def use(ctx):
        if ctx.input == "bad":
            raise KeyError("tool exploded")
        return await ctx.gen("use it")

    async with tiny_runtime(engine) as rt:
        results = await rt.run(wf, ["ok1", "bad", "ok2"])
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, KeyError)
    assert "use" not in results[1].results and "fetch" in results[1].results
    assert_kv_clean(engine)


async def test_failure_cancels_sibling_branches_and_releases_kv(tiny_models):
    engine = tiny_engine(tiny_models)
    wf = Workflow("fan")

    @wf.agent(prefix="root", max_tokens=2, ignore_eos=True)
    async def root(ctx):
        return await ctx.gen("start")

    @wf.agent(prefix="slow branch", after=[root], max_tokens=300, ignore_eos=True)
    async def slow(ctx):
        return await ctx.gen("long answer")

    @wf.agent(prefix="bad branch", after=[root], max_tokens=2, ignore_eos=True)
    async def bad(ctx):
        await ctx.gen("short")
        raise RuntimeError("boom")

    @wf.agent(after=[slow, bad])
    async def join(ctx):
        return "never"

    async with tiny_runtime(engine) as rt:
        (result,) = await rt.run(wf, [None])
    assert not result.ok and str(result.error) == "boom"
    assert "slow" not in result.results and "join" not in result.results
    assert_kv_clean(engine)


async def test_cancel_workflow_releases_kv(tiny_models):
    engine = tiny_engine(tiny_models)
    wf = Workflow("long")

    @wf.agent(prefix="talk a lot", max_tokens=400, ignore_eos=True)
    async def talker(ctx):
        return await ctx.gen(ctx.input)

    async with tiny_runtime(engine) as rt, rt:
        doomed = rt.submit(wf, "x")
        other = rt.submit(wf, "y")
        await anyio.sleep(0.1)
        rt.cancel(doomed.workflow_id)
        cancelled = await doomed.wait()
        finished = await other.wait()
    assert isinstance(cancelled.error, WorkflowCancelledError)
    assert finished.ok
    assert_kv_clean(engine)


async def test_ste_reaches_the_client_on_every_change(tiny_models):
    snapshots: list[dict] = []
    async with tiny_runtime(tiny_engine(tiny_models)) as rt:
        push = rt.llm.update_steps_to_execution  # the real AsyncLLM's, recorded on the way
        rt.llm.update_steps_to_execution = lambda ste: (snapshots.append(dict(ste)), push(ste))
        await rt.run(review_loop([]), ["x"])
    assert snapshots[0] == {"review/planner": 0, "review/coder": 1, "review/reviewer": 2}
    assert any(s.get("review/coder") == 1 and s.get("review/reviewer") == 0 for s in snapshots)
    assert snapshots[-1] == {}  # the workflow ended


async def test_fan_out_calls_batch_together(tiny_models):
    engine = tiny_engine(tiny_models)
    wf = Workflow("fanout")

    @wf.agent(prefix="brainstorm", max_tokens=6, ignore_eos=True)
    async def ideas(ctx):
        return await ctx.gen_many([f"idea {i}" for i in range(5)])

    async with tiny_runtime(engine) as rt:
        (result,) = await rt.run(wf, [None])
    assert len(result.output) == 5 and result.llm_calls == 5
    assert max(engine.stats.batch_sizes) >= 5


def test_declaration_errors():
    wf = Workflow("bad")

    @wf.agent(after=["ghost"])
    async def a(ctx): ...

    with pytest.raises(UnknownAgentError, match="ghost"):
        _ = wf.graph

    with pytest.raises(GraphError, match="max_loops needs loop_to"):

        @Workflow("w").agent(max_loops=2)
        async def b(ctx): ...

    wf2 = Workflow("loop")

    @wf2.agent()
    async def c(ctx): ...

    with pytest.raises(UnboundedCycleError):  # at declaration, not first use

        @wf2.agent(after=[c], loop_to=c)
        async def d(ctx): ...


async def test_goto_to_a_non_successor_fails_the_workflow(tiny_models):
    wf = Workflow("wrong")

    @wf.agent()
    async def a(ctx):
        ctx.goto("c")

    @wf.agent(after=[a])
    async def b(ctx): ...

    @wf.agent(after=[b])
    async def c(ctx): ...

    async with tiny_runtime(tiny_engine(tiny_models)) as rt:
        (result,) = await rt.run(wf, [None])
    assert not result.ok and "c" in str(result.error)


async def test_an_error_in_the_body_cancels_running_agents_and_is_the_only_error(tiny_models):
    engine = tiny_engine(tiny_models)
    wf = Workflow("long")
    started = anyio.Event()

    @wf.agent(prefix="long", max_tokens=400, ignore_eos=True)
    async def talker(ctx):
        started.set()
        return await ctx.gen("go on")

    with pytest.raises(BaseException) as info:
        async with tiny_runtime(engine) as rt, rt:
            rt.submit(wf, None)
            await started.wait()
            await anyio.sleep(0.05)
            raise KeyError("the body's own")
    assert repr(unwrap(info.value)) == repr(KeyError("the body's own"))  # nothing else
    async with AsyncLLM(engine) as llm:  # the aborted request is gone after one more step
        await llm.complete([5, 6, 7], SamplingParams(max_tokens=1))
    assert_kv_clean(engine)
