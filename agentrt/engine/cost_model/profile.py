"""Cost profiles: what one engine step costs on a given model and machine, as JSON.

A step runs decodes (one token each) and prefill chunks in one forward pass. Its time is

    step_overhead_s
    + combine(decode.weights_read_s, prefill.per_token_s * prefill_tokens
                                     + decode.per_seq_s * decodes)
    + prefill.per_pair_s * (query, key) pairs attended by prefill chunks
    + decode.per_context_token_s * context tokens read by decodes

where `combine` is `+` (weight reads and compute do not overlap: the CPU fit) or `max`
when `overlap_weights_and_compute` (a roofline: GPU steps are memory- or compute-bound).
Host<->device copies take `transfer_latency_s + bytes / host_device_bytes_per_s`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

PROFILE_DIR = "agentrt.engine.cost_model.profiles"


class ProfileError(ValueError):
    """A profile name that does not exist or a file that is not a valid profile."""


class PrefillCost(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    per_token_s: float = Field(ge=0, description="linear layers, per prefill token")
    per_pair_s: float = Field(ge=0, description="attention, per (query, key) pair")


class DecodeCost(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    weights_read_s: float = Field(ge=0, description="reading all weights once (every step)")
    per_seq_s: float = Field(ge=0, description="per decoding sequence (its token's compute)")
    per_context_token_s: float = Field(ge=0, description="per KV token a decode reads")


class CostProfile(BaseModel):
    """One model on one machine. `sources` says where every figure comes from."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str
    model: str
    hardware: str
    dtype: str = "bfloat16"
    step_overhead_s: float = Field(ge=0)
    prefill: PrefillCost
    decode: DecodeCost
    overlap_weights_and_compute: bool = False
    host_device_bytes_per_s: float = Field(gt=0)
    transfer_latency_s: float = Field(default=0.0, ge=0)
    kv_bytes_per_token: int = Field(gt=0)
    vocab_size: int | None = Field(default=None, gt=0)
    sources: list[str] = Field(min_length=1)
    notes: str = ""
    fit: dict[str, Any] | None = None  # calibration quality, for calibrated profiles

    def to_json(self) -> str:
        return self.model_dump_json(indent=2, exclude_none=True) + "\n"


def profile_names() -> list[str]:
    """Names of the profiles shipped with agentrt."""
    files = resources.files(PROFILE_DIR).iterdir()
    return sorted(f.name.removesuffix(".json") for f in files if f.name.endswith(".json"))


def load_profile(name_or_path: str | Path) -> CostProfile:
    """A shipped profile by name (e.g. `h100-llama3-8b`) or a JSON file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise ProfileError(f"cost profile file {str(path)!r} does not exist")
        text, origin = path.read_text(), str(path)
    else:
        entry = resources.files(PROFILE_DIR).joinpath(f"{name_or_path}.json")
        if not entry.is_file():
            raise ProfileError(
                f"unknown cost profile {str(name_or_path)!r}; shipped profiles: "
                f"{', '.join(profile_names())} (or give a path to a .json file)"
            )
        text, origin = entry.read_text(), f"profile {name_or_path!r}"
    try:
        return CostProfile.model_validate_json(text)
    except ValidationError as exc:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ProfileError(f"invalid cost profile in {origin}: {fields}") from None
