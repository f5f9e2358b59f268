"""Reading traces: our own JSONL, Mooncake JSONL and BurstGPT CSV, as `CallRecord`s.

A malformed line raises `TraceFormatError` naming the file and line number; with
`skip_bad=True` it is counted in `TraceReader.skipped` and skipped instead.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import orjson
from pydantic import ValidationError

from agentrt.trace.schema import CallRecord

FORMATS = ("agentrt", "mooncake", "burstgpt")
MOONCAKE_BLOCK = 512


class TraceFormatError(ValueError):
    """A trace line that cannot be read; the message names the file and line."""


class TraceReader:
    """Iterate the records of one trace file: `for record in TraceReader(path): ...`."""

    def __init__(self, path: str | Path, fmt: str = "auto", skip_bad: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no trace file at {self.path}")
        self.format = detect_format(self.path) if fmt == "auto" else fmt
        if self.format not in FORMATS:
            raise ValueError(f"unknown trace format {fmt!r}; use auto or one of {FORMATS}")
        self.skip_bad = skip_bad
        self.skipped = 0

    def __iter__(self) -> Iterator[CallRecord]:
        rows = self._csv_rows() if self.format == "burstgpt" else self._json_rows()
        parse = {"agentrt": _agentrt, "mooncake": _mooncake, "burstgpt": _BurstGPT()}[self.format]
        for lineno, row in rows:
            try:
                yield parse(row, lineno)
            except (ValueError, KeyError, TypeError) as exc:
                if not self.skip_bad:
                    raise TraceFormatError(f"{self.path}:{lineno}: {_why(exc)}") from exc
                self.skipped += 1

    def _json_rows(self) -> Iterator[tuple[int, object]]:
        with self.path.open("rb") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    yield lineno, orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    if not self.skip_bad:
                        raise TraceFormatError(f"{self.path}:{lineno}: not JSON ({exc})") from exc
                    self.skipped += 1

    def _csv_rows(self) -> Iterator[tuple[int, object]]:
        with self.path.open(newline="") as f:
            reader = csv.DictReader(f)
            for row in reader:
                yield reader.line_num, row


def detect_format(path: Path) -> str:
    if path.suffix.lower() == ".csv":
        return "burstgpt"
    with path.open("rb") as f:
        for line in f:
            if line.strip():
                try:
                    first = orjson.loads(line)
                except orjson.JSONDecodeError:
                    break
                if isinstance(first, dict) and "hash_ids" in first and "call_id" not in first:
                    return "mooncake"
                return "agentrt"
    raise TraceFormatError(f"{path}: cannot tell the trace format from its first line")


def _why(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}" for e in exc.errors()
        )
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc)


def _agentrt(row: object, lineno: int) -> CallRecord:
    if not isinstance(row, dict):
        raise TypeError("a record must be a JSON object")
    return CallRecord.model_validate(row)


def _mooncake(row: object, lineno: int) -> CallRecord:
    if not isinstance(row, dict):
        raise TypeError("a record must be a JSON object")
    call_id = f"mooncake-{lineno}"
    return CallRecord(
        call_id=call_id,
        workflow_id=call_id,
        agent_id="mooncake",
        step=0,
        arrival_s=float(row["timestamp"]) / 1000.0,
        prompt_len=int(row["input_length"]),
        output_len=int(row["output_length"]),
        hash_ids=[int(h) for h in row["hash_ids"]],
        block_size=MOONCAKE_BLOCK,
    )


class _BurstGPT:
    """BurstGPT CSV rows. Requests of one session form a chain: each depends on the
    previous one, with think time = its arrival - (previous arrival + previous elapsed)."""

    def __init__(self) -> None:
        self._last: dict[str, tuple[str, float, int]] = {}

    def __call__(self, row: object, lineno: int) -> CallRecord:
        assert isinstance(row, dict)
        arrival = float(row["Timestamp"])
        session = str(row["Session ID"]).strip()
        elapsed = float(row["Elapsed time"])
        prompt_len = int(float(row["Request tokens"]))
        output_len = int(float(row["Response tokens"]))
        if arrival < 0 or elapsed < 0:
            raise ValueError("Timestamp and Elapsed time must be non-negative")
        call_id = f"burstgpt-{lineno}"
        parents: list[str] = []
        think = 0.0
        step = 0
        if session and session in self._last:
            parent, finished, step = self._last[session]
            parents, think, step = [parent], max(0.0, arrival - finished), step + 1
        if session:
            self._last[session] = (call_id, arrival + elapsed, step)
        return CallRecord(
            call_id=call_id,
            workflow_id=f"session-{session}" if session else call_id,
            agent_id=str(row.get("Model") or "burstgpt").strip(),
            step=step,
            parents=parents,
            think_time_s=think,
            arrival_s=arrival,
            prompt_len=max(1, prompt_len),
            output_len=output_len,
            latency_s=elapsed,
        )
