"""A whole trace for a replay, every line accounted for: `read = len(records) + skipped`.

`load_trace` then checks what no single line can show: a call_id used twice (the first
line keeps it), a parent not in the trace, a dependency cycle. Without `skip_bad` the
first problem (lowest line) raises `TraceFormatError` `FILE:LINE: why`; with it, the line
is skipped and listed, and so is every call depending on a skipped line, transitively.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

from agentrt.trace.importers import BadLine, TraceFormatError, TraceReader
from agentrt.trace.schema import CallRecord


@dataclass
class TraceLoad:
    path: Path
    format: str
    records: list[CallRecord]  # in file order
    read: int  # non-blank lines read (the CSV header excepted), good or bad
    skipped: list[BadLine]  # by line

    def __post_init__(self) -> None:
        assert len(self.records) + len(self.skipped) == self.read


def load_trace(
    path: str | Path, fmt: str = "auto", skip_bad: bool = False, max_requests: int | None = None
) -> TraceLoad:
    """The trace's records; with `max_requests`, reading stops after that many good
    lines (and the lines read up to there are all that is accounted for)."""
    reader = TraceReader(path, fmt, skip_bad)
    lines: list[tuple[int, CallRecord]] = []
    for line in reader.lines():
        lines.append(line)
        if max_requests is not None and len(lines) >= max_requests:
            break
    cut = max_requests is not None and len(lines) >= max_requests
    problems = _dependency_problems(reader.path, lines, reader.bad, cut)
    primary = [p for p in problems if not p.why.startswith("depends on")]
    if primary and not skip_bad:
        raise TraceFormatError(str(min(primary, key=lambda p: p.line)))
    dropped = {p.line for p in problems}
    return TraceLoad(
        path=reader.path,
        format=reader.format,
        records=[r for lineno, r in lines if lineno not in dropped],
        read=reader.read,
        skipped=sorted([*reader.bad, *problems], key=lambda b: b.line),
    )


def _dependency_problems(
    path: Path, lines: list[tuple[int, CallRecord]], bad: list[BadLine], cut: bool
) -> list[BadLine]:
    """The good lines that must be skipped: duplicate ids, unknown parents, cycles, and
    (transitively) dependants of any skipped line."""
    skipped_ids = {b.call_id: b.line for b in bad if b.call_id is not None}
    line_of: dict[str, int] = {}
    problems: list[BadLine] = []
    kept: list[CallRecord] = []
    for lineno, r in lines:
        if r.call_id in line_of:
            why = f"duplicate call_id {r.call_id!r} (first on line {line_of[r.call_id]})"
            problems.append(BadLine(path, lineno, why, None))
        else:
            line_of[r.call_id] = lineno
            kept.append(r)
    why: dict[str, str] = {}  # call_id -> why it is skipped
    children: dict[str, list[str]] = {}
    pending: dict[str, int] = {}  # parents not settled yet
    for r in kept:
        for p in r.parents:
            if p in line_of:
                children.setdefault(p, []).append(r.call_id)
            elif p in skipped_ids:
                why.setdefault(r.call_id, f"depends on skipped line {skipped_ids[p]} ({p!r})")
            else:
                where = "among the lines read (--max-requests)" if cut else "in the trace"
                why.setdefault(r.call_id, f"parent {p!r} is not {where}")
        pending[r.call_id] = sum(p in line_of for p in r.parents)
    # Settle calls parents first; a skipped parent makes its dependants skipped.
    settled: set[str] = set()
    ready = deque(r.call_id for r in kept if pending[r.call_id] == 0)
    settled.update(ready)

    def drain() -> None:
        while ready:
            call_id = ready.popleft()
            for child in children.get(call_id, ()):
                if child in settled:
                    continue
                if call_id in why:
                    skipped_line = line_of[call_id]
                    why.setdefault(child, f"depends on skipped line {skipped_line} ({call_id!r})")
                pending[child] -= 1
                if pending[child] == 0:
                    settled.add(child)
                    ready.append(child)

    drain()
    # What is left is in a cycle or depends on one: walk up from the first such call
    # (in file order) to a call seen twice, skip that cycle, settle what it unblocks.
    record_of = {r.call_id: r for r in kept}
    for r in kept:
        while r.call_id not in settled:
            walk: dict[str, int] = {}
            call_id = r.call_id
            while call_id not in walk:
                walk[call_id] = len(walk)
                call_id = next(
                    p for p in record_of[call_id].parents if p in line_of and p not in settled
                )
            cycle = list(walk)[walk[call_id] :]
            text = " -> ".join(f"{c!r} (line {line_of[c]})" for c in [*cycle, cycle[0]])
            for c in cycle:
                why[c] = f"dependency cycle: {text}"
                settled.add(c)
            ready.extend(cycle)
            drain()
    problems.extend(BadLine(path, line_of[c], reason, c) for c, reason in why.items())
    return problems
