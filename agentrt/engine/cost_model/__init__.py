"""The cost-model runner (`sim` backend): the shared batcher and KV manager, with time
taken from a calibrated or published cost profile instead of running a model."""

from agentrt.engine.cost_model.model import CostModel, StepFeatures
from agentrt.engine.cost_model.profile import (
    CostProfile,
    DecodeCost,
    PrefillCost,
    ProfileError,
    load_profile,
    profile_names,
)
from agentrt.engine.cost_model.runner import CostModelRunner

__all__ = [
    "CostModel",
    "CostModelRunner",
    "CostProfile",
    "DecodeCost",
    "PrefillCost",
    "ProfileError",
    "StepFeatures",
    "load_profile",
    "profile_names",
]
