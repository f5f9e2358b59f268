"""Call traces: schema, recorder, importers and prompt-token synthesis."""

from agentrt.trace.importers import FORMATS, BadLine, TraceFormatError, TraceReader, detect_format
from agentrt.trace.load import TraceLoad, load_trace
from agentrt.trace.recorder import TraceRecorder
from agentrt.trace.schema import TRACE_VERSION, CallRecord
from agentrt.trace.tokens import prompt_tokens

__all__ = [
    "FORMATS",
    "BadLine",
    "TRACE_VERSION",
    "CallRecord",
    "TraceFormatError",
    "TraceLoad",
    "TraceReader",
    "TraceRecorder",
    "detect_format",
    "load_trace",
    "prompt_tokens",
]
