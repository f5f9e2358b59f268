"""Multi-agent simulations: the world interface, a Smallville-like town, a virtual-time driver."""

from agentrt.simulation.async_driver import AsyncStepExecutor, simulate_async
from agentrt.simulation.driver import run_modes, simulate
from agentrt.simulation.result import SimResult, world_hash
from agentrt.simulation.town import TownState, TownWorld
from agentrt.simulation.town_scenario import (
    ScenarioError,
    TownScenario,
    load_scenario,
    scenario_from_dict,
)
from agentrt.simulation.world import (
    Action,
    AgentStepPlan,
    CausalityError,
    LLMCall,
    Observation,
    World,
)

__all__ = [
    "Action",
    "AsyncStepExecutor",
    "AgentStepPlan",
    "CausalityError",
    "LLMCall",
    "Observation",
    "ScenarioError",
    "SimResult",
    "TownScenario",
    "TownState",
    "TownWorld",
    "World",
    "load_scenario",
    "run_modes",
    "scenario_from_dict",
    "simulate",
    "simulate_async",
    "world_hash",
]
