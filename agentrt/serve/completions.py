"""POST /v1/completions: plain prompts (text or token ids), whole or streamed."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from agentrt.engine.outputs import RequestOutput
from agentrt.serve.agents import Call
from agentrt.serve.choices import Job
from agentrt.serve.errors import APIError
from agentrt.serve.hints import RequestHints
from agentrt.serve.logprobs import LogprobFormatter
from agentrt.serve.protocol import CompletionRequest
from agentrt.serve.sampling import sampling_params
from agentrt.serve.service import Service, check_finished
from agentrt.serve.streaming import DONE, event


@dataclass
class CompletionPlan:
    req: CompletionRequest
    prompts: list[list[int]]
    jobs: list[Job]  # choice i answers prompts[i // n]
    hints: RequestHints
    call: Call
    tool_names: list[str] = field(default_factory=list)
    predicted_steps: float | None = None
    pinned_until: float | None = None  # (completions call no tools)
    id: str = field(default_factory=lambda: f"cmpl-{secrets.token_hex(12)}")
    created: int = field(default_factory=lambda: int(time.time()))


def _prompts(prompt: str | list) -> list[str | list[int]]:
    if isinstance(prompt, str):
        return [prompt]
    if prompt and isinstance(prompt[0], int):
        return [prompt]
    return list(prompt)


class CompletionHandler:
    def __init__(self, service: Service) -> None:
        self.service = service
        tok = service.engine.tokenizer
        self.logprobs = LogprobFormatter(tok) if tok is not None else None

    async def plan(self, req: CompletionRequest, hints: RequestHints) -> CompletionPlan:
        svc = self.service
        svc.check_model(req.model)
        if req.echo or req.suffix:
            raise APIError(400, "echo and suffix are not supported", param="echo")
        raw = _prompts(req.prompt)
        if not raw:
            raise APIError(400, "the prompt is empty", param="prompt")
        if len(raw) * req.n > svc.settings.max_n:
            raise APIError(400, f"prompts x n must be at most {svc.settings.max_n}", param="n")
        if req.logprobs is not None and self.logprobs is None:
            raise APIError(400, "logprobs need a model with a tokenizer", param="logprobs")
        prompts = []
        for p in raw:
            try:
                ids = svc.engine.tokenize(p)
            except ValueError as exc:
                raise APIError(400, str(exc), param="prompt") from None
            svc.check_prompt(ids)
            prompts.append(ids)
        jobs: list[Job] = []
        fixed = hints.prefix_len
        call = svc.agents.call_of(hints, prompts[0][:fixed] if fixed else None)
        start = svc.agents.program_start(call)
        for ids in prompts:
            params = sampling_params(
                req, svc.max_tokens(req.max_tokens, len(ids)), req.logprobs, None
            )
            prefix_len = min(fixed, len(ids)) if fixed and call.agent else None
            jobs.extend(
                Job(
                    ids,
                    p,
                    call.agent,
                    prefix_len,
                    hints.priority,
                    start,
                    call.conversation,
                    follow_up=not hints.is_last_step,
                )
                for p in params
            )
        return CompletionPlan(req, prompts, jobs, hints, call)

    def _usage(self, plan: CompletionPlan, outs: list[RequestOutput]) -> dict:
        n = plan.req.n
        prompt = sum(len(p) for p in plan.prompts)
        completion = sum(len(o.token_ids) for o in outs)
        cached = sum(min(o.num_cached_tokens, len(o.prompt_token_ids)) for o in outs[::n])
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        }

    def _logprobs(self, out: RequestOutput, start: int, offset: int) -> dict | None:
        if out.logprobs is None or self.logprobs is None:
            return None
        return self.logprobs.completion(out.logprobs[start:], offset)

    async def complete(self, plan: CompletionPlan) -> dict:
        outs = await self.service.complete(plan.jobs)
        self.service.answered(plan, outs[0])
        choices = [
            {
                "index": i,
                "text": out.text,
                "logprobs": self._logprobs(out, 0, 0),
                "finish_reason": out.finish_reason,
            }
            for i, out in enumerate(outs)
        ]
        x = self.service.x_agentrt(plan, outs[0])
        return self._body(plan, choices, self._usage(plan, outs), x)

    def _body(
        self, plan: CompletionPlan, choices: list[dict], usage: dict | None, x: dict | None = None
    ) -> dict:
        body = {
            "id": plan.id,
            "object": "text_completion",
            "created": plan.created,
            "model": plan.req.model,
            "choices": choices,
            "usage": usage,
        }
        if x is not None:
            body["x_agentrt"] = x
        return body

    async def stream(self, plan: CompletionPlan) -> AsyncIterator[bytes]:
        """SSE chunks of text as it is decoded; a finish chunk goes out with whatever
        comes next (the usage chunk and [DONE] for the last), in one write."""
        held: list[bytes] = []
        sent = [0] * len(plan.jobs)
        sent_tokens = [0] * len(plan.jobs)
        finals: list[RequestOutput | None] = [None] * len(plan.jobs)
        try:
            async with self.service.stream(plan.jobs) as outs:
                async for i, out in outs:
                    text = out.text
                    end = len(text)
                    if not out.finished and text.endswith("\ufffd"):
                        end -= 1
                    if out.finished:
                        check_finished(out)
                        finals[i] = out
                        if i == 0:
                            self.service.answered(plan, out)
                    if end <= sent[i] and not out.finished:
                        continue
                    piece = text[sent[i] : end]
                    logprobs = self._logprobs(out, sent_tokens[i], sent[i])
                    sent[i], sent_tokens[i] = end, len(out.token_ids)
                    choice = {
                        "index": i,
                        "text": piece,
                        "logprobs": logprobs,
                        "finish_reason": out.finish_reason if out.finished else None,
                    }
                    x = self.service.x_agentrt(plan, out) if out.finished else None
                    held.append(event(self._body(plan, [choice], None, x)))
                    if not out.finished:
                        yield b"".join(held)
                        held.clear()
        except APIError as exc:
            yield b"".join([*held, event(exc.body()), DONE])
            return
        if plan.req.include_usage:
            done = [o for o in finals if o is not None]
            held.append(event(self._body(plan, [], self._usage(plan, done))))
        yield b"".join([*held, DONE])
