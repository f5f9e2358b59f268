"""Scheduling: the out-of-order dependency tracker and ready-call priorities."""

from agentrt.scheduler.call import (
    Call,
    CallCancelledError,
    CallId,
    CallState,
    DependencyFailedError,
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
    "CallCancelledError",
    "CallId",
    "CallState",
    "DependencyFailedError",
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
