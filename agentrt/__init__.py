"""agentrt: an agentic workflow runtime with KV-aware scheduling and a built-in engine.

Public names are imported lazily so that the torch-free parts (graph, scheduler,
kvmanager) can be used without loading torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "LLM": "agentrt.engine.llm",
    "AsyncLLM": "agentrt.engine.async_llm",
    "LLMEngine": "agentrt.engine.llm_engine",
    "EngineConfig": "agentrt.engine.config",
    "SamplingParams": "agentrt.engine.sampling_params",
    "StepGraph": "agentrt.graph.step_graph",
    "Workflow": "agentrt.graph.decorators",
    "Runtime": "agentrt.scheduler.runtime",
    "WorkflowResult": "agentrt.scheduler.runtime",
    "HintBoard": "agentrt.scheduler.hints",
    "run": "agentrt.api",
    "open_runtime": "agentrt.api",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'agentrt' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
