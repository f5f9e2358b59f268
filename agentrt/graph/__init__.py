"""Step graphs: agents, their edges (AND/OR joins, bounded loops) and steps-to-execution.

Torch-free bookkeeping shared by the scheduler, the runtime and the KV manager.
"""

from agentrt.graph import errors
from agentrt.graph.agent_spec import AgentSpec, Join
from agentrt.graph.errors import (
    DuplicateAgentError,
    DuplicateEdgeError,
    GraphError,
    InvalidBoundError,
    LoopBoundError,
    NoEntryAgentError,
    NotALoopError,
    UnboundedCycleError,
    UnboundedSelfLoopError,
    UnknownAgentError,
    WorkflowStateError,
)
from agentrt.graph.graph_index import BackEdge, GraphIndex
from agentrt.graph.ste import due_next, steps_to_execution
from agentrt.graph.step_graph import StepGraph
from agentrt.graph.workflow_state import WorkflowState

__all__ = [
    "AgentSpec",
    "BackEdge",
    "DuplicateAgentError",
    "DuplicateEdgeError",
    "GraphError",
    "GraphIndex",
    "InvalidBoundError",
    "Join",
    "LoopBoundError",
    "NoEntryAgentError",
    "NotALoopError",
    "StepGraph",
    "UnboundedCycleError",
    "UnboundedSelfLoopError",
    "UnknownAgentError",
    "WorkflowState",
    "WorkflowStateError",
    "due_next",
    "errors",
    "steps_to_execution",
]
