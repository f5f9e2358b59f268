"""POST /v1/chat/completions: plan a request, then answer it whole or as SSE chunks."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from agentrt.engine.outputs import RequestOutput
from agentrt.engine.structured_params import StructuredOutputParams
from agentrt.serve import tool_calls as tc
from agentrt.serve.agents import Call
from agentrt.serve.choices import Job
from agentrt.serve.errors import APIError
from agentrt.serve.hints import RequestHints
from agentrt.serve.logprobs import LogprobFormatter
from agentrt.serve.protocol import ChatCompletionRequest, ToolCall
from agentrt.serve.sampling import sampling_params
from agentrt.serve.service import Service, check_finished
from agentrt.serve.streaming import DONE, event


@dataclass
class ChatPlan:
    req: ChatCompletionRequest
    prompt_ids: list[int]
    jobs: list[Job]
    tools: tc.ToolMode
    hints: RequestHints
    call: Call
    tool_names: list[str] = field(default_factory=list)
    predicted_steps: float | None = None
    pinned_until: float | None = None
    id: str = field(default_factory=lambda: f"chatcmpl-{secrets.token_hex(12)}")
    created: int = field(default_factory=lambda: int(time.time()))


def _structured(req: ChatCompletionRequest, mode: tc.ToolMode) -> StructuredOutputParams | None:
    fmt = req.response_format
    wants_json = fmt is not None and fmt.type != "text"
    if mode.constrained:
        if wants_json:
            raise APIError(
                400,
                "response_format cannot be combined with a required or named tool_choice",
                param="response_format",
            )
        return tc.tool_grammar(mode, req.parallel_tool_calls)
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return StructuredOutputParams(kind="json_object")
    schema = fmt.json_schema.schema_ if fmt.json_schema else None
    return StructuredOutputParams(kind="json_schema", spec=json.dumps(schema or {"type": "object"}))


def _usage(plan: ChatPlan, outs: list[RequestOutput]) -> dict:
    prompt = len(plan.prompt_ids)
    completion = sum(len(o.token_ids) for o in outs)
    cached = min(outs[0].num_cached_tokens, prompt) if outs else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


class ChatHandler:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.logprobs = LogprobFormatter(service.engine.tokenizer)

    async def plan(self, req: ChatCompletionRequest, hints: RequestHints) -> ChatPlan:
        svc = self.service
        svc.check_model(req.model)
        if svc.renderer is None:
            raise APIError(400, "this model has no chat template; use /v1/completions")
        if req.top_logprobs is not None and not req.logprobs:
            raise APIError(400, "top_logprobs needs logprobs: true", param="top_logprobs")
        if req.n > svc.settings.max_n:
            raise APIError(400, f"n must be at most {svc.settings.max_n}", param="n")
        mode = tc.tool_mode(req)
        tools = list(mode.tools) or None
        ids = svc.renderer.render(req.messages, tools)
        svc.check_prompt(ids, "messages")
        prefix_len = svc.renderer.fixed_prefix_len(req.messages, tools, ids)
        call = svc.agents.call_of(hints, ids[:prefix_len], req.messages)
        structured = _structured(req, mode)
        await svc.compile(structured)
        limit = req.max_completion_tokens or req.max_tokens
        logprobs = (req.top_logprobs or 0) if req.logprobs else None
        params = sampling_params(req, svc.max_tokens(limit, len(ids)), logprobs, structured)
        fixed = prefix_len if call.agent else None
        start = svc.agents.program_start(call)
        follow_up = not (mode.constrained or hints.is_last_step)  # a forced tool call pauses
        jobs = [
            Job(
                ids,
                p,
                call.agent,
                fixed,
                hints.priority,
                start,
                call.conversation,
                follow_up=follow_up,
            )
            for p in params
        ]
        return ChatPlan(req, ids, jobs, mode, hints, call)

    # -- whole answers ------------------------------------------------------------------

    async def complete(self, plan: ChatPlan) -> dict:
        outs = await self.service.complete(plan.jobs)
        choices = [self._choice(plan, i, out) for i, out in enumerate(outs)]
        return {
            "id": plan.id,
            "object": "chat.completion",
            "created": plan.created,
            "model": plan.req.model,
            "choices": choices,
            "usage": _usage(plan, outs),
            "system_fingerprint": None,
            "x_agentrt": self.service.x_agentrt(plan, outs[0]),
        }

    def _split(self, plan: ChatPlan, text: str) -> tuple[str | None, list[ToolCall]]:
        mode = plan.tools
        if mode.constrained:
            calls = tc.parse_constrained(mode, text)
            return (None, calls) if calls else (text, [])
        if mode.mode == "auto":
            return tc.parse_auto(text, {t.function.name for t in mode.tools})
        return text, []

    def _finished(
        self, plan: ChatPlan, index: int, out: RequestOutput
    ) -> tuple[str | None, list[ToolCall]]:
        """A finished choice's content and tool calls; the first choice's calls pause
        its conversation (its KV stays pinned for them)."""
        content, calls = self._split(plan, out.text)
        names = [c.function.name for c in calls]
        plan.tool_names.extend(names)
        if index == 0:
            self.service.answered(plan, out)
        if index == 0 and names:
            self.service.pause(plan, names, out)
        return content, calls

    def _choice(self, plan: ChatPlan, index: int, out: RequestOutput) -> dict:
        content, calls = self._finished(plan, index, out)
        message: dict = {"role": "assistant", "content": content}
        if calls:
            message["tool_calls"] = [c.model_dump() for c in calls]
        return {
            "index": index,
            "message": message,
            "logprobs": self.logprobs.chat(out.logprobs) if out.logprobs is not None else None,
            "finish_reason": "tool_calls" if calls else out.finish_reason,
        }

    # -- streams ------------------------------------------------------------------------

    def _chunk(
        self, plan: ChatPlan, choices: list[dict], usage: dict | None = None, x: dict | None = None
    ) -> bytes:
        body = {
            "id": plan.id,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": plan.req.model,
            "choices": choices,
        }
        if plan.req.include_usage:
            body["usage"] = usage
        if x is not None:
            body["x_agentrt"] = x
        return event(body)

    async def stream(self, plan: ChatPlan) -> AsyncIterator[bytes]:
        """SSE chunks: a role chunk per choice, content (or tool-call) deltas, a chunk
        with the finish reason, the usage chunk when asked, then [DONE]. An error after
        the stream began goes out as an `error` event before [DONE]. Chunks go out in as
        few writes as keep their timing: the role chunks with the first output, a finish
        chunk with whatever comes next (the usage chunk and [DONE] for the last)."""
        states = [_ChoiceStream(plan.tools) for _ in plan.jobs]
        finals: list[RequestOutput | None] = [None] * len(plan.jobs)
        held = []
        for i in range(len(plan.jobs)):
            role = {"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None}
            held.append(self._chunk(plan, [{**role, "finish_reason": None}]))
        try:
            async with self.service.stream(plan.jobs) as outs:
                async for i, out in outs:
                    state = states[i]
                    logprobs = None
                    if out.logprobs is not None:
                        logprobs = self.logprobs.chat(out.logprobs[state.sent_tokens :])
                        state.sent_tokens = len(out.logprobs)
                    if out.finished:
                        finals[i] = out
                        check_finished(out)
                        _, calls = self._finished(plan, i, out)
                        delta = state.final_delta(out, calls)
                        reason = "tool_calls" if calls else out.finish_reason
                        choice = {"index": i, "delta": delta, "logprobs": logprobs}
                        extra = self.service.x_agentrt(plan, out)
                        held.append(
                            self._chunk(plan, [{**choice, "finish_reason": reason}], x=extra)
                        )
                        continue
                    delta = state.delta(out)
                    if delta or logprobs:
                        choice = {"index": i, "delta": delta, "logprobs": logprobs}
                        held.append(self._chunk(plan, [{**choice, "finish_reason": None}]))
                        yield b"".join(held)
                        held.clear()
        except APIError as exc:
            yield b"".join([*held, event(exc.body()), DONE])
            return
        if plan.req.include_usage:
            held.append(self._chunk(plan, [], _usage(plan, [o for o in finals if o is not None])))
        yield b"".join([*held, DONE])


class _ChoiceStream:
    """What one choice has sent so far, and what its next delta is. A named tool
    choice streams its arguments as `tool_calls` deltas (the first with the call's id
    and name); `required` sends its calls whole at the end (they are parsed from a JSON
    list); `auto` streams content and holds back what may begin a `<tool_call>` tag."""

    def __init__(self, mode: tc.ToolMode) -> None:
        self.mode = mode
        self.sent = 0  # characters of the output text sent
        self.sent_tokens = 0
        self.in_tool_call = False
        self.call_id = f"call_{secrets.token_hex(12)}" if mode.mode == "named" else None
        self.announced = False

    def _ready(self, text: str) -> int:
        """How much of the text may go out now (the request is still running)."""
        if self.mode.mode == "required":
            return self.sent
        end = len(text)
        if text.endswith("\ufffd"):  # an incomplete character
            end -= 1
        if self.mode.mode == "auto":
            if self.in_tool_call or tc.OPEN in text[self.sent :]:
                self.in_tool_call = True
                found = text.find(tc.OPEN, self.sent)
                return max(self.sent, found) if found >= 0 else self.sent
            end = min(end, len(text) - tc.held_back(text))
        return max(self.sent, end)

    def _piece(self, piece: str) -> dict:
        if self.call_id is None:
            return {"content": piece}
        call: dict = {"index": 0, "function": {"arguments": piece}}
        if not self.announced:
            self.announced = True
            call.update(id=self.call_id, type="function")
            call["function"]["name"] = self.mode.name
        return {"tool_calls": [call]}

    def delta(self, out: RequestOutput) -> dict:
        end = self._ready(out.text)
        if end <= self.sent:
            return {}
        piece = out.text[self.sent : end]
        self.sent = end
        return self._piece(piece)

    def final_delta(self, out: RequestOutput, calls: list[ToolCall]) -> dict:
        rest = out.text[self.sent :]
        self.sent = len(out.text)
        if self.call_id is not None:  # the named call's arguments went out as they came
            return self._piece(rest) if rest or not self.announced else {}
        if not calls:
            return {"content": rest} if rest else {}
        delta: dict = {}
        if self.mode.mode == "auto":  # text before the first block is content
            head = rest[: rest.find(tc.OPEN)].rstrip()
            if head:
                delta["content"] = head
        delta["tool_calls"] = [
            {
                "index": k,
                "id": c.id,
                "type": "function",
                "function": {"name": c.function.name, "arguments": c.function.arguments},
            }
            for k, c in enumerate(calls)
        ]
        return delta
