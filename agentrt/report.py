"""Human tables (vLLM-bench style) and machine-readable JSON for every measuring command."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from agentrt.output_files import atomic_write_bytes


def format_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A fixed-width table with a centred title; floats get 3 significant decimals."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.3f}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in text)) for i, h in enumerate(header)]
    width = sum(widths) + 3 * (len(widths) - 1)
    head = "   ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    lines = [f" {title} ".center(width, "="), head, "-" * width]
    for row in text:  # the first column left-aligned, the others right-aligned
        pairs = enumerate(zip(row, widths, strict=True))
        lines.append("   ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in pairs))
    lines.append("=" * width)
    return "\n".join(lines)


def number(value: float | None, spec: str) -> str:
    """`value` formatted with `spec`, or "-" in the same width for a figure that does not
    exist (None)."""
    if value is not None:
        return format(value, spec)
    align, width = re.match(r"([<>^]?)(\d*)", spec).groups()
    return format("-", f"{align or '>'}{width}")


def write_json(path: str | Path | None, result: dict[str, Any]) -> None:
    """Write one JSON object atomically (no-op when path is None): serialised first, so a
    value JSON cannot hold fails before the file is touched."""
    if path is None:
        return
    data = orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    atomic_write_bytes(path, data)
