"""Trace schema and recorder (replay and importers build on these)."""

from agentrt.trace.recorder import TraceRecorder
from agentrt.trace.schema import TRACE_VERSION, CallRecord

__all__ = ["TRACE_VERSION", "CallRecord", "TraceRecorder"]
