"""What a request's output must match (pure data; compiled in structured_output.py)."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator


class StructuredOutputParams(BaseModel):
    """What the output must match: `json_schema` (a schema as JSON text), `json_object`
    (any JSON object) or `ebnf` (an xgrammar EBNF grammar with a `root` rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["json_schema", "json_object", "ebnf"]
    spec: str = ""

    @model_validator(mode="after")
    def _spec_present(self) -> StructuredOutputParams:
        if self.kind != "json_object" and not self.spec:
            raise ValueError(f"structured output of kind {self.kind!r} needs a spec")
        if self.kind == "json_schema":
            try:
                json.loads(self.spec)
            except ValueError as exc:
                raise ValueError(f"json_schema is not valid JSON: {exc}") from None
        return self
