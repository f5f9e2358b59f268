"""The synchronous user API: `LLM(...).generate(prompts, params)`."""

from __future__ import annotations

from collections.abc import Sequence as Seq

from tqdm.auto import tqdm

from agentrt.engine.config import EngineConfig
from agentrt.engine.llm_engine import LLMEngine, Prompt
from agentrt.engine.outputs import RequestOutput
from agentrt.engine.sampling_params import SamplingParams


class LLM:
    """Offline batched generation on the built-in engine.

    >>> llm = LLM()  # the embedded SmolLM2-135M-Instruct
    >>> llm.generate(["Hello"], SamplingParams(max_tokens=8))[0].text
    """

    def __init__(self, model: str | None = None, **config) -> None:
        self.engine = LLMEngine.from_config(EngineConfig(model=model, **config))

    @property
    def tokenizer(self):
        return self.engine.tokenizer

    def chat_prompt(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of `messages` under the model's chat template, ready to generate."""
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer and so no chat template")
        return list(
            self.tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=True, return_dict=False
            )
        )

    def generate(
        self,
        prompts: Prompt | Seq[Prompt],
        params: SamplingParams | Seq[SamplingParams] | None = None,
        use_tqdm: bool = False,
    ) -> list[RequestOutput]:
        """Generate for every prompt in one continuous batch; outputs keep prompt order.
        A single prompt may be a string or a list of token ids. A bad prompt or value
        raises before anything runs (all or nothing); a request that fails while it
        runs gets an output with `finish_reason == "error"` and `error` set, and the
        others complete as usual."""
        if isinstance(prompts, str) or (prompts and isinstance(prompts[0], int)):
            prompts = [prompts]
        if params is None or isinstance(params, SamplingParams):
            params = [params or SamplingParams()] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("give one SamplingParams or one per prompt")
        ids: list[str] = []
        try:
            for prompt, sp in zip(prompts, params, strict=True):
                ids.append(self.engine.add_request(prompt, sp))
        except Exception:
            for request_id in ids:  # all or nothing: withdraw what was already queued
                self.engine.abort(request_id)
            self.engine.step()
            raise
        finished: dict[str, RequestOutput] = {}
        with tqdm(total=len(ids), desc="generate", disable=not use_tqdm) as bar:
            while self.engine.has_unfinished_requests():
                for out in self.engine.step():
                    if out.finished:
                        finished[out.request_id] = out
                        bar.update(1)
        return [finished[i] for i in ids]
