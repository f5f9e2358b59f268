"""Call traces: schema, recorder, importers and prompt-token synthesis."""

from agentrt.trace.importers import FORMATS, TraceFormatError, TraceReader
from agentrt.trace.recorder import TraceRecorder
from agentrt.trace.schema import CallRecord
from agentrt.trace.tokens import prompt_tokens

__all__ = [
    "FORMATS",
    "CallRecord",
    "TraceFormatError",
    "TraceReader",
    "TraceRecorder",
    "prompt_tokens",
]
