"""What the runtime tells its model client besides the calls: each call's `CallInfo`
(agent, workflow, call id, parents), every instance's start with its graph under agent
ids, each agent run's start and finish (with a `goto`'s targets), a tool pause after a
model call (not before one), and exactly one end per instance, whether it completed,
failed or was cancelled. The client answers at once (the bench's `InstantClient`)."""

from __future__ import annotations

import anyio

from agentrt import Workflow
from agentrt.bench.kvflow_workloads import IdsTokenizer
from agentrt.bench.runtime_overhead import InstantClient
from agentrt.engine.call_info import CallInfo
from agentrt.engine.prompt import PromptBuilder
from agentrt.graph.step_graph import StepGraph
from agentrt.scheduler.runtime import Runtime


class RecordingClient(InstantClient):
    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.calls: list[CallInfo] = []

    async def complete(self, prompt, params, call: CallInfo):
        self.calls.append(call)
        return await super().complete(prompt, params, call)

    def workflow_started(self, workflow_id: str, graph: StepGraph) -> None:
        self.events.append(("workflow_started", workflow_id, tuple(graph.agents)))

    def workflow_finished(self, workflow_id: str) -> None:
        self.events.append(("workflow_finished", workflow_id))

    def agent_started(self, workflow_id: str, agent_id: str) -> None:
        self.events.append(("agent_started", workflow_id, agent_id))

    def agent_finished(self, workflow_id: str, agent_id: str, take: list[str] | None) -> None:
        self.events.append(("agent_finished", workflow_id, agent_id, take))

    def tool_paused(self, workflow_id: str, agent_id: str, tool: str) -> None:
        self.events.append(("tool_paused", workflow_id, agent_id, tool))


def search(query: str) -> str:
    return query


def _workflow() -> Workflow:
    wf = Workflow("hooks")

    @wf.agent(prefix="1")
    async def route(ctx):
        await ctx.tool(search, "before any call")  # nothing to pause: no call yet
        await ctx.gen("5")
        await ctx.tool(search, "after a call")
        await ctx.gen("6")
        if ctx.input == "fail":
            raise RuntimeError("no")
        if ctx.input == "hang":
            await anyio.sleep(60)
        ctx.goto("left")

    @wf.agent(prefix="2", after=[route])
    async def left(ctx):
        return await ctx.gen("7")

    @wf.agent(prefix="3", after=[route])
    async def right(ctx):
        return await ctx.gen("8")

    return wf


def test_the_client_hears_of_every_start_finish_pause_and_end():
    client = RecordingClient()

    async def main():
        runtime = Runtime(client, PromptBuilder(IdsTokenizer()))
        async with runtime:
            wf = _workflow()
            ok = runtime.submit(wf, "ok", "w-ok")
            fail = runtime.submit(wf, "fail", "w-fail")
            hang = runtime.submit(wf, "hang", "w-hang")
            with anyio.fail_after(10):
                while ("agent_started", "w-hang", "hooks/route") not in client.events:
                    await anyio.sleep(0.01)
            runtime.cancel("w-hang")
            return [await h.wait() for h in (ok, fail, hang)]

    results = anyio.run(main)
    assert [r.ok for r in results] == [True, False, False]
    of = {w: [e for e in client.events if e[1] == w] for w in ("w-ok", "w-fail", "w-hang")}
    assert of["w-ok"] == [
        ("workflow_started", "w-ok", ("hooks/route", "hooks/left", "hooks/right")),
        ("agent_started", "w-ok", "hooks/route"),
        ("tool_paused", "w-ok", "hooks/route", "search"),  # only the one after a call
        ("agent_finished", "w-ok", "hooks/route", ["hooks/left"]),
        ("agent_started", "w-ok", "hooks/left"),
        ("agent_finished", "w-ok", "hooks/left", None),
        ("workflow_finished", "w-ok"),
    ]
    for failed in ("w-fail", "w-hang"):  # no finish for the failed run; one end
        assert [e[0] for e in of[failed]] == [
            "workflow_started",
            "agent_started",
            "tool_paused",
            "workflow_finished",
        ]
    left = [c for c in client.calls if c.agent_id == "hooks/left"]
    [route_last] = [c for c in client.calls if c.call_id == "w-ok/route/2"]
    assert left == [CallInfo("hooks/left", 1, "w-ok", "w-ok/left/3", ("w-ok/route/2",))]
    assert route_last.parent_call_ids == ("w-ok/route/1",)
