"""Learned workflow graphs for a server that sees only requests (torch-free bookkeeping).

- `AgentKey`: a request's agent (hint, or chained hash of its fixed prefix's blocks) and
  its workflow's kind.
- `TransitionLearner` / `LearnedGraphs`: per workflow kind, which agent follows which
  (probability, delay), and each live workflow's expected steps-to-execution;
  `LearnedGraphs.agent_ste(now)` feeds `update_steps_to_execution`.
- `ToolPauses`: the pause expected after a response ending in tool calls, per tool.
- `PinBook`: budgeted, expiring KV pins for those pauses.
- `export_learned` / `import_learned` / `read_learned` / `write_learned` (schema in
  `learn/schema.py`) and `to_step_graph`, so a learned graph can be replayed offline;
  `learn_from_records` learns the graphs of a recorded trace.
"""

from agentrt.learn.agent_key import AgentKey
from agentrt.learn.as_step_graph import to_step_graph
from agentrt.learn.config import LearnerConfig
from agentrt.learn.errors import LearnedGraphFormatError, LearnError
from agentrt.learn.export import (
    export_learned,
    import_learned,
    learners_of,
    read_learned,
    write_learned,
)
from agentrt.learn.from_trace import learn_from_records
from agentrt.learn.hitting import expected_steps
from agentrt.learn.pins import PinBook, PinResult
from agentrt.learn.registry import LearnedGraphs
from agentrt.learn.stats import DelayStats
from agentrt.learn.tool_pauses import ToolPauses
from agentrt.learn.transitions import TransitionLearner

__all__ = [
    "AgentKey",
    "DelayStats",
    "LearnError",
    "LearnedGraphFormatError",
    "LearnedGraphs",
    "LearnerConfig",
    "PinBook",
    "PinResult",
    "ToolPauses",
    "TransitionLearner",
    "expected_steps",
    "export_learned",
    "import_learned",
    "learn_from_records",
    "learners_of",
    "read_learned",
    "to_step_graph",
    "write_learned",
]
