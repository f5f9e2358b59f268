"""The server's side of the engine: admission, choices in flight, metrics.

Requests go through AsyncLLM, the engine's own request lifecycle; this adds what an HTTP
server needs around it: a bound on requests in flight (503 beyond it), the check that a
prompt fits, and one stream per HTTP request that merges its choices (n > 1, or several
completion prompts). Leaving that stream early (a client that disconnects) aborts every
choice still running, which frees its KV.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import aclosing

import anyio
from anyio.abc import TaskGroup

from agentrt.engine.async_llm import AsyncLLM, EngineDeadError
from agentrt.engine.call_info import CallInfo
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.structured_params import StructuredOutputParams
from agentrt.graph.ste import ste_json
from agentrt.serve.agents import AgentTracker, prediction_outcome
from agentrt.serve.chat_template import ChatRenderer
from agentrt.serve.choices import ChoiceStream, Job
from agentrt.serve.errors import APIError
from agentrt.serve.metrics import ServerMetrics
from agentrt.serve.plan import Plan
from agentrt.serve.settings import ServeSettings


class Service:
    def __init__(self, llm: AsyncLLM, settings: ServeSettings, model_name: str) -> None:
        self.llm = llm
        self.engine = llm.engine
        self.settings = settings
        self.model_name = model_name
        self.created = int(time.time())
        self.metrics = ServerMetrics(self.engine, model_name)
        self.pending = 0
        self.tasks: TaskGroup | None = None  # the lifespan's, for choices of n > 1
        self.draining = False
        self.max_prompt_tokens = min(
            settings.max_prompt_tokens or self.engine.max_model_len - 1,
            self.engine.max_model_len - 1,
        )
        tok = self.engine.tokenizer
        self.renderer = ChatRenderer(tok) if tok is not None and tok.chat_template else None
        kv = self.engine.kv
        self.agents = AgentTracker(
            self._publish,
            kv.page_size,
            pin=self.engine.pin,
            unpin=self.engine.unpin,
            pin_budget_pages=int(kv.num_pages * settings.pin_budget),
            engine_clock=self.engine.clock.now,
            pool_pages=kv.num_pages,
            pin_rule=settings.pin_rule,
            pins_shed=kv.pins.drain_shed,
        )
        self.workflows = self.agents.declared

    # -- checks -------------------------------------------------------------------------

    def check_model(self, name: str) -> None:
        if name != self.model_name:
            raise APIError(
                404,
                f"model {name!r} does not exist; this server serves {self.model_name!r}",
                param="model",
                code="model_not_found",
            )

    def check_prompt(self, ids: list[int], param: str = "prompt") -> None:
        if not ids:
            raise APIError(400, "the prompt is empty", param=param)
        if len(ids) > self.max_prompt_tokens:
            raise APIError(
                400,
                f"this model's maximum prompt length is {self.max_prompt_tokens} tokens; "
                f"the prompt has {len(ids)}",
                param=param,
                code="context_length_exceeded",
            )
        vocab = self.engine.vocab_size
        if vocab is not None and not (min(ids) >= 0 and max(ids) < vocab):
            raise APIError(400, f"prompt token ids must be in [0, {vocab})", param=param)

    def max_tokens(self, requested: int | None, prompt_len: int) -> int:
        """What a request may generate: its own limit, else what the context leaves."""
        room = self.engine.max_model_len - prompt_len
        return requested if requested is not None else max(1, room)

    async def compile(self, spec: StructuredOutputParams | None) -> None:
        """Compile a grammar off the event loop (the engine then finds it cached)."""
        if spec is None:
            return
        try:
            await anyio.to_thread.run_sync(self.engine.runner.compile_grammar, spec)
        except ValueError as exc:
            raise APIError(400, str(exc), param="response_format") from None

    # -- agents ---------------------------------------------------------------------------

    def _publish(self, agent_ste: dict[str, float]) -> None:
        """Steps-to-execution per agent to the engine's KV manager."""
        self.llm.update_steps_to_execution(agent_ste)
        self.metrics.hinted_agents.labels(self.model_name).set(len(agent_ste))
        self.metrics.workflows.labels(self.model_name).set(len(self.workflows.declared))

    def pause(self, plan: Plan, tool_names: list[str], out: RequestOutput) -> None:
        """The first choice of `plan` ended in calls of `tool_names`: pin its
        conversation for the TTL the tools' pauses make worth it (`plan.pinned_until`)."""
        tokens = [*out.prompt_token_ids, *out.token_ids]
        plan.pinned_until = self.agents.pause(plan.call, tool_names, tokens)

    def answered(self, plan: Plan, out: RequestOutput) -> None:
        """The first choice of `plan` finished: its time to first token prices a reload
        (`AgentTracker.measured`); in a declared workflow, its tokens are what a tool
        pause of its agent keeps (`AgentTracker.tool_paused`)."""
        call = plan.call
        if out.first_token_time is not None:
            missed = len(out.prompt_token_ids) - out.num_device_cached_tokens
            self.agents.measured(out.first_token_time - out.arrival_time, missed)
        if call.declared:
            tokens = [*out.prompt_token_ids, *out.token_ids]
            self.workflows.answered(call.workflow, call.agent, tokens)

    def x_agentrt(self, plan: Plan, out: RequestOutput) -> dict:
        """The `x_agentrt` object of a response: this choice's prefix-cache hit, what
        became of each hint, until when its KV stays pinned (null: not pinned), and the
        agent call as the server saw it (its agent and workflow keys, whether its graph
        was declared, and the steps the learned graph expected until it ran)."""
        call = plan.call
        return {
            "cached_tokens": min(out.num_cached_tokens, len(out.prompt_token_ids)),
            "hint_outcome": plan.hints.outcome,
            "pinned_until": plan.pinned_until,
            "agent": {
                "agent_key": call.agent,
                "workflow": call.workflow,
                "graph": "declared" if call.declared else "learned",
                "predicted_steps": ste_json(plan.predicted_steps),
            },
        }

    def admit(self, plan: Plan) -> Callable[[], None]:
        """Hold a place in flight for each of the plan's choices, or answer 503 when
        they are not free, and start its agent call. Returns the call that gives the
        places back and ends the agent call (call it exactly once)."""
        num_choices = len(plan.jobs)
        if self.draining:
            raise APIError(503, "the server is shutting down", code="shutting_down")
        if self.pending + num_choices > self.settings.max_pending:
            self.metrics.rejected.labels(self.model_name, "503").inc()
            raise APIError(
                503,
                f"the server is at its limit of {self.settings.max_pending} requests in "
                "flight; retry later",
                code="server_busy",
                headers={"Retry-After": str(self.settings.retry_after_seconds)},
            )
        self.pending += num_choices
        why, plan.predicted_steps = self.agents.started(plan.call)
        if plan.call.agent is not None and not plan.call.declared:
            outcome = prediction_outcome(plan.predicted_steps)
            self.metrics.learned_predictions.labels(self.model_name, outcome).inc()
        if why is not None:
            plan.hints.outcome["workflow_progress"] = f"ignored: {why}"
        if plan.hints.given:
            self.metrics.hinted(plan.hints.outcome)

        def release() -> None:
            self.pending -= num_choices
            self.agents.finished(plan.call, plan.tool_names)

        return release

    # -- generation ---------------------------------------------------------------------

    def stream(self, jobs: list[Job]) -> ChoiceStream:
        """(choice index, output) after every step that extends a choice, all choices
        merged; use it as `async with service.stream(jobs) as outs`. Engine errors that
        reject a request come out as APIError (400)."""
        assert self.tasks is not None, "the app's lifespan sets the task group"
        return ChoiceStream(jobs, self._generate, self.tasks)

    async def _generate(self, job: Job):
        outputs = self.llm.generate(
            job.prompt_ids,
            job.params,
            CallInfo(job.agent_id, job.prefix_len, priority=job.priority),
            program_start=job.program_start,
            pin_key=job.pin_key,
            follow_up=job.follow_up,
        )
        try:
            async with aclosing(outputs) as outputs:
                async for out in outputs:
                    if out.finished:
                        self.metrics.finished(out)
                    yield out
        except ValueError as exc:  # add_request refused it
            if job.pin_key is not None:  # (it cannot take the pin over)
                self.engine.unpin(job.pin_key)
            raise APIError(400, str(exc)) from None
        except EngineDeadError:
            raise APIError(
                503, "the engine failed; restart the server", code="engine_dead"
            ) from None
        except Exception as exc:  # this request failed inside the engine; others go on
            raise APIError(
                500, f"the engine failed this request: {exc}", code="engine_error"
            ) from None

    async def complete(self, jobs: list[Job]) -> list[RequestOutput]:
        """The final output of every choice."""
        final: list[RequestOutput | None] = [None] * len(jobs)
        async with self.stream(jobs) as outs:
            async for i, out in outs:
                if out.finished:
                    final[i] = out
        return [check_finished(out) for out in final]


def check_finished(out: RequestOutput | None) -> RequestOutput:
    """A finished output, or the error that ended it (engine failure, shutdown)."""
    if out is None or out.finish_reason == "abort":
        raise APIError(503, "the request was aborted (the server is shutting down)")
    if out.finish_reason == "error":
        raise APIError(500, f"the engine failed this request: {out.error}", code="engine_error")
    return out
