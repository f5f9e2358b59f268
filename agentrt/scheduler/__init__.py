"""Scheduling: the runtime, the out-of-order dependency tracker and ready-work priorities."""

from agentrt.scheduler.call import (
    Call,
    CallId,
    CallState,
    DuplicateCallError,
    InvalidTransitionError,
    TrackerError,
    UnknownCallError,
)
from agentrt.scheduler.priority import (
    KeyedReadyQueue,
    ReadyQueue,
    make_priority,
    priority_names,
    register_priority,
)
from agentrt.scheduler.tracker import DependencyTracker

__all__ = [
    "Call",
    "CallId",
    "CallState",
    "DependencyTracker",
    "DuplicateCallError",
    "InvalidTransitionError",
    "KeyedReadyQueue",
    "ReadyQueue",
    "TrackerError",
    "UnknownCallError",
    "make_priority",
    "priority_names",
    "register_priority",
]
