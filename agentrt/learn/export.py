"""Learned graphs to and from the JSON document of `learn/schema.py`.

`export_learned` builds the document of a registry (and its tool pauses); it is what
`GET /v1/workflows/learned` returns. `import_learned` validates a document and adopts
its kinds into a registry (replacing kinds of the same name, whose live workflows carry
over; live workflows are never part of a document) and its tool stats into a
`ToolPauses`. `write_learned` /
`read_learned` store a document in a file (written atomically); a missing, unreadable or
invalid file raises `LearnedGraphFormatError` with one line naming the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentrt.learn.agent_key import DEFAULT_BLOCK_SIZE
from agentrt.learn.errors import LearnedGraphFormatError
from agentrt.learn.registry import LearnedGraphs
from agentrt.learn.schema import SCHEMA_NAME, SCHEMA_VERSION, validate_document
from agentrt.learn.tool_pauses import ToolPauses
from agentrt.learn.transitions import TransitionLearner
from agentrt.output_files import atomic_write_text


def export_learned(
    graphs: LearnedGraphs,
    pauses: ToolPauses | None = None,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> dict[str, Any]:
    """The document of every kind `graphs` knows (and of `pauses`' tools)."""
    kinds = [graphs.learner(kind) for kind in graphs.kinds]
    return {
        "schema": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "block_size": block_size,
        "kinds": [learner.to_dict() for learner in kinds if learner is not None],
        "tool_pauses": pauses.to_dict() if pauses is not None else {},
    }


def import_learned(
    doc: Any, graphs: LearnedGraphs, now: float, pauses: ToolPauses | None = None
) -> list[str]:
    """Validate `doc` and adopt its kinds (seen at `now`) and tool stats; returns the
    kinds adopted (a new kind finds no room when `max_kinds` kinds are all live)."""
    checked = validate_document(doc)
    adopted = [
        kind["kind"]
        for kind in checked["kinds"]
        if graphs.add_learner(TransitionLearner.from_dict(kind, graphs.config), now)
    ]
    if pauses is not None:
        pauses.load_dict(checked["tool_pauses"])
    return adopted


def learners_of(doc: Any) -> list[TransitionLearner]:
    """The learners of a document on their own (e.g. for `to_step_graph`)."""
    return [TransitionLearner.from_dict(kind) for kind in validate_document(doc)["kinds"]]


def write_learned(path: str | Path, doc: dict[str, Any]) -> None:
    """Write a document (validated first) as indented JSON."""
    validate_document(doc)
    atomic_write_text(Path(path), json.dumps(doc, indent=1) + "\n")


def read_learned(path: str | Path) -> dict[str, Any]:
    """Read and validate a document file."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LearnedGraphFormatError(f"{path}: cannot read a learned graph: {exc}") from None
    try:
        return validate_document(data)
    except LearnedGraphFormatError as exc:
        raise LearnedGraphFormatError(f"{path}: {exc}") from None
