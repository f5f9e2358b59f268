"""The runtime's workflows on a real agentrt server (`agentrt serve` on the tiny chat model,
in a thread) through `backend="openai"`: every call carries its workflow, agent, step and
parent steps; each workflow's step graph is declared while it runs, stands where the
runtime's does (also through `goto` and agents that make no call), and is deleted when
it ends (completed, failed, cancelled, or the runtime stopped); a tool pause between two
calls of an agent pins that agent's KV on the server until its next call."""

from __future__ import annotations

import time

import anyio
import pytest
from engine_helpers import make_engine
from serve_helpers import ServerThread, make_tiny_chat_model

from agentrt import Workflow
from agentrt.api import open_runtime
from agentrt.scheduler.errors import unwrap
from agentrt.serve.agents import pause_key
from agentrt.serve.settings import ServeSettings


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_chat_model(tmp_path_factory.mktemp("remote-wf") / "tinychat")


def _remote(server, model_dir) -> dict:
    return {"backend": "openai", "base_url": server.base_url, "tokenizer": str(model_dir)}


def _service(server):
    return server.app.state.service


def _hint_counts(server) -> dict[tuple[str, str], float]:
    """`agentrt:request_hints_total` by (field, outcome)."""
    from prometheus_client.parser import text_string_to_metric_families

    counts = {}
    for family in text_string_to_metric_families(server.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "agentrt:request_hints_total":
                counts[sample.labels["field"], sample.labels["outcome"]] = sample.value
    return counts


def test_calls_carry_their_identity_and_the_graph_is_declared_while_it_runs(model_dir):
    wf = Workflow("ident")
    seen: dict[str, dict] = {}

    @wf.agent(prefix="You are a planner. " * 4, max_tokens=4)
    async def planner(ctx):
        return await ctx.gen(f"Plan: {ctx.input}")

    @wf.agent(prefix="You are a coder. " * 4, after=[planner], max_tokens=4)
    async def coder(ctx):
        text = await ctx.gen(f"Code: {ctx.results['planner']}")
        declared = _service(server).workflows.get(ctx.workflow_id)
        seen[ctx.workflow_id] = declared.describe() if declared is not None else {}
        return text

    engine = make_engine(model_dir, kv_cache_tokens=8192)

    async def main():
        async with open_runtime(**_remote(server, model_dir)) as rt:
            handles = [rt.submit(wf, x) for x in ("sort", "add")]
            return [await h.wait() for h in handles]

    with ServerThread(engine) as server:
        results = anyio.run(main)
        counts = _hint_counts(server)
        left = dict(_service(server).workflows.declared)
    assert all(r.error is None for r in results)
    ids = {r.workflow_id for r in results}
    assert set(seen) == ids
    for state in seen.values():  # the runtime's graph, under its agent ids, moved by calls
        assert state["agents"] == ["ident/planner", "ident/coder"]
        assert state["running"] == ["ident/coder"]
    assert left == {}  # deleted as each workflow ended
    calls = 4
    for field in ("workflow_id", "agent_id", "step_id", "prefix_len", "priority"):
        assert counts[field, "accepted"] == calls, field
    assert counts["parent_step_id", "accepted"] == 2  # the coders' calls follow the planners'
    assert ("workflow_progress", "ignored") not in counts  # every call fit its graph
    engine.check_integrity()


class _Stop(Exception):
    pass


def test_the_declared_graph_follows_goto_and_agents_without_calls(model_dir):
    """A router that makes no model call picks one of two OR-branches: the server's
    graph has the router finished, the chosen branch running, the other never ready
    (from requests alone it could not have known either)."""
    wf = Workflow("route")
    seen: list[dict] = []

    @wf.agent()
    async def router(ctx):
        ctx.goto("left")
        return "left"

    @wf.agent(after=[router], prefix="Go left. " * 4, max_tokens=2)
    async def left(ctx):
        text = await ctx.gen(ctx.input)
        seen.append(_service(server).workflows.get(ctx.workflow_id).describe())
        return text

    @wf.agent(after=[router], max_tokens=2)
    async def right(ctx):
        return await ctx.gen(ctx.input)

    engine = make_engine(model_dir, kv_cache_tokens=8192)

    async def main():
        async with open_runtime(**_remote(server, model_dir)) as rt:
            return await rt.submit(wf, "which way").wait()

    with ServerThread(engine) as server:
        result = anyio.run(main)
        counts = _hint_counts(server)
    assert result.error is None and "right" not in result.results  # it never ran
    [state] = seen
    assert state["running"] == ["route/left"] and state["ready"] == []
    assert state["progress"] == "reports"
    assert state["steps_to_execution"].get("route/right") is None  # never reached
    assert ("workflow_progress", "ignored") not in counts
    engine.check_integrity()


def test_failed_cancelled_and_abandoned_workflows_are_deleted(model_dir):
    wf = Workflow("ends")

    @wf.agent(prefix="Be brief.", max_tokens=2)
    async def step(ctx):
        await ctx.gen(ctx.input)
        if ctx.input == "fail":
            raise RuntimeError("the agent gives up")
        if ctx.input in ("cancel", "abandon"):
            await anyio.sleep(60)
        return ctx.input

    engine = make_engine(model_dir, kv_cache_tokens=8192)

    async def until(condition) -> None:
        with anyio.fail_after(30):
            while not condition():
                await anyio.sleep(0.01)

    def declared(workflow_id: str) -> bool:
        return _service(server).workflows.get(workflow_id) is not None

    async def main():
        async with open_runtime(**_remote(server, model_dir)) as rt:
            ok, failing = rt.submit(wf, "ok"), rt.submit(wf, "fail")
            cancelled = rt.submit(wf, "cancel")
            await until(lambda: declared(cancelled.workflow_id))
            rt.cancel(cancelled.workflow_id)
            results = [await h.wait() for h in (ok, failing, cancelled)]
            assert [r.error is None for r in results] == [True, False, False]
            await until(lambda: not _service(server).workflows.declared)  # (sent in the background)
            abandoned = rt.submit(wf, "abandon")
            await until(lambda: declared(abandoned.workflow_id))
            raise _Stop  # the runtime stops with it running

    stopped = False
    with ServerThread(engine) as server:
        try:
            anyio.run(main)
        except Exception as exc:  # (inside the runtime's task group)
            stopped = isinstance(unwrap(exc), _Stop)
        left = dict(_service(server).workflows.declared)
    assert stopped
    assert left == {}  # the backend deleted the abandoned one as it closed
    engine.check_integrity()


def test_a_tool_pause_pins_the_agents_kv_until_its_next_call(model_dir):
    wf = Workflow("tooly")
    observed: dict[str, object] = {}

    def lookup(key) -> str:
        """The tool: waits (up to 30 s) for the server to hold the agent's pin."""
        book = _service(server).agents.pin_book
        deadline = time.monotonic() + 30
        while key not in book and time.monotonic() < deadline:
            time.sleep(0.01)
        observed["pinned_until"] = book.until(key)
        return "42"

    @wf.agent(prefix="You look things up. " * 4, max_tokens=4)
    async def agent(ctx):
        first = await ctx.gen(f"Question: {ctx.input}")
        answer = await ctx.tool(lookup, pause_key(ctx.workflow_id, ctx.agent_id))
        second = await ctx.gen(f"{first} Tool said {answer}.")
        observed["after"] = pause_key(ctx.workflow_id, ctx.agent_id) in (
            _service(server).agents.pin_book
        )
        return second

    engine = make_engine(model_dir, kv_cache_tokens=8192)

    async def main():
        async with open_runtime(**_remote(server, model_dir)) as rt:
            return await rt.submit(wf, "what is six times seven").wait()

    settings = ServeSettings(grace_seconds=5, pin_rule="pause")  # every pause is pinned
    with ServerThread(engine, settings) as server:
        result = anyio.run(main)
        learned = _service(server).agents.pauses.tools
    assert result.error is None
    assert observed["pinned_until"] is not None  # pinned during the pause
    assert observed["after"] is False  # the agent's next call released it
    assert "lookup" in learned  # and taught the server how long `lookup` pauses
    engine.check_integrity()


def test_a_tool_before_any_call_is_no_pause(model_dir):
    """An agent that runs a tool before its first model call has nothing to keep: no
    tool pause reaches the server (and the run is unaffected)."""
    wf = Workflow("tool-first")

    @wf.agent(prefix="Be brief.", max_tokens=2)
    async def agent(ctx):
        word = await ctx.tool(str.upper, ctx.input)
        return await ctx.gen(word)

    engine = make_engine(model_dir, kv_cache_tokens=8192)

    async def main():
        async with open_runtime(**_remote(server, model_dir)) as rt:
            return await rt.submit(wf, "hi").wait()

    with ServerThread(engine) as server:
        result = anyio.run(main)
        learned = _service(server).agents.pauses.tools
    assert result.error is None
    assert learned == {}
