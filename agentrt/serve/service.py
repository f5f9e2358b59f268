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
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams
from agentrt.engine.structured_params import StructuredOutputParams
from agentrt.serve.chat_template import ChatRenderer
from agentrt.serve.choices import ChoiceStream, Job
from agentrt.serve.errors import APIError
from agentrt.serve.metrics import ServerMetrics
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

    def admit(self, num_choices: int) -> Callable[[], None]:
        """Hold `num_choices` places in flight, or answer 503 when they are not free.
        Returns the call that gives them back (call it exactly once)."""
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

        def release() -> None:
            self.pending -= num_choices

        return release

    # -- generation ---------------------------------------------------------------------

    def stream(self, jobs: list[Job]) -> ChoiceStream:
        """(choice index, output) after every step that extends a choice, all choices
        merged; use it as `async with service.stream(jobs) as outs`. Engine errors that
        reject a request come out as APIError (400)."""
        assert self.tasks is not None, "the app's lifespan sets the task group"
        return ChoiceStream(jobs, self._generate, self.tasks)

    async def _generate(self, ids: list[int], params: SamplingParams):
        try:
            async with aclosing(self.llm.generate(ids, params)) as outputs:
                async for out in outputs:
                    if out.finished:
                        self.metrics.finished(out)
                    yield out
        except ValueError as exc:  # add_request refused it
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
