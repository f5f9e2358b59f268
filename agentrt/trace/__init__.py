"""Call traces: schema, recorder, importers and prompt-token synthesis."""

from agentrt.trace.importers import FORMATS, TraceFormatError, TraceReader, detect_format
from agentrt.trace.recorder import TraceRecorder
from agentrt.trace.schema import TRACE_VERSION, CallRecord
from agentrt.trace.tokens import prompt_tokens

__all__ = [
    "FORMATS",
    "TRACE_VERSION",
    "CallRecord",
    "TraceFormatError",
    "TraceReader",
    "TraceRecorder",
    "detect_format",
    "prompt_tokens",
]
