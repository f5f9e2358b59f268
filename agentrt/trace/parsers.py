"""One trace line -> one `CallRecord`, per format (ours, Mooncake JSONL, BurstGPT CSV).

A parser takes the line's value (JSON, or a CSV row's fields) and its line number and
raises `ValueError` saying why the line is not a valid record. Values are never converted:
a number as a string, a float for an integer, a bool, NaN or infinity are errors.
`line_id` names the call a line would have made (to find the calls depending on it).
"""

from __future__ import annotations

import math

from pydantic import ValidationError

from agentrt.trace.schema import CallRecord

MOONCAKE_BLOCK = 512
BURSTGPT_REQUIRED = ("Timestamp", "Request tokens", "Response tokens")
BURSTGPT_OPTIONAL = ("Session ID", "Elapsed time", "Model")


def line_id(fmt: str, row: object, lineno: int) -> str | None:
    """The call id of the record on line `lineno` (None: an agentrt line without one)."""
    if fmt != "agentrt":
        return f"{fmt}-{lineno}"
    call_id = row.get("call_id") if isinstance(row, dict) else None
    return call_id if isinstance(call_id, str) else None


def agentrt(row: object, lineno: int) -> CallRecord:
    return _record(_object(row), {})


def mooncake(row: object, lineno: int) -> CallRecord:
    row = _object(row)
    hash_ids = _field(row, "hash_ids")
    if not isinstance(hash_ids, list) or not all(_is_int(h) for h in hash_ids):
        raise ValueError(f"hash_ids must be a list of integers, got {_show(hash_ids)}")
    call_id = f"mooncake-{lineno}"
    fields = {
        "call_id": call_id,
        "workflow_id": call_id,
        "agent_id": "mooncake",
        "step": 0,
        "arrival_s": _json_number(row, "timestamp") / 1000.0,
        "prompt_len": _json_int(row, "input_length"),
        "output_len": _json_int(row, "output_length"),
        "hash_ids": hash_ids,
        "block_size": MOONCAKE_BLOCK,
    }
    names = {"arrival_s": "timestamp", "prompt_len": "input_length", "output_len": "output_length"}
    return _record(fields, names)


class BurstGPT:
    """BurstGPT CSV rows, given the header's column names. A session's requests form a
    chain: each depends on the previous one, think time = arrival - (previous arrival +
    previous elapsed time), at least 0. Within a session timestamps must not go back."""

    def __init__(self, header: list[str]) -> None:
        self.columns = [name.strip() for name in header]
        missing = [c for c in BURSTGPT_REQUIRED if c not in self.columns]
        if missing:
            raise ValueError(
                f"not a BurstGPT header: no column {', '.join(map(repr, missing))} "
                f"(needs {', '.join(BURSTGPT_REQUIRED)}; may have {', '.join(BURSTGPT_OPTIONAL)})"
            )
        # session -> (call id, line, arrival, finish time, step) of its last row
        self._last: dict[str, tuple[str, int, float | None, float | None, int]] = {}

    def __call__(self, fields: list[str], lineno: int) -> CallRecord:
        # a row with the wrong field count is in no session: its fields cannot be trusted
        if len(fields) != len(self.columns):
            raise ValueError(f"{len(fields)} fields, the header has {len(self.columns)}")
        row = {name: value.strip() for name, value in zip(self.columns, fields, strict=True)}
        call_id = f"burstgpt-{lineno}"
        session = row.get("Session ID", "")
        previous = self._last.get(session) if session else None
        step = previous[4] + 1 if previous else 0
        if session:  # registered first: the session's next row depends on this one, good or bad
            self._last[session] = (call_id, lineno, None, None, step)
        arrival = _csv_number(row, "Timestamp")
        elapsed = _csv_number(row, "Elapsed time") if row.get("Elapsed time") else None
        prompt_len = _csv_int(row, "Request tokens")
        output_len = _csv_int(row, "Response tokens")
        finished = arrival + (elapsed or 0.0)
        if session:
            self._last[session] = (call_id, lineno, arrival, finished, step)
        parents: list[str] = []
        think = 0.0
        if previous is not None:
            parent, parent_line, parent_arrival, parent_finished, _ = previous
            if parent_arrival is not None and arrival < parent_arrival:
                raise ValueError(
                    f"Timestamp {arrival} goes back before this session's previous request "
                    f"(line {parent_line}, {parent_arrival})"
                )
            parents = [parent]
            if parent_finished is not None:
                think = max(0.0, arrival - parent_finished)
        fields_ = {
            "call_id": call_id,
            "workflow_id": f"session-{session}" if session else call_id,
            "agent_id": row.get("Model") or "burstgpt",
            "step": step,
            "parents": parents,
            "think_time_s": think,
            "arrival_s": arrival,
            "prompt_len": prompt_len,
            "output_len": output_len,
            "latency_s": elapsed,
        }
        names = {
            "arrival_s": "Timestamp",
            "prompt_len": "Request tokens",
            "output_len": "Response tokens",
        }
        return _record(fields_, names)


def _record(fields: dict, names: dict[str, str]) -> CallRecord:
    """The record, or `ValueError` with pydantic's errors as `field (source name): message`."""
    try:
        return CallRecord.model_validate(fields, strict=True)
    except ValidationError as exc:
        parts = []
        for error in exc.errors():
            loc = ".".join(map(str, error["loc"]))
            if loc in names:
                loc = f"{loc} ({names[loc]})"
            message = error["msg"].removeprefix("Value error, ")
            parts.append(f"{loc}: {message}" if loc else message)
        raise ValueError("; ".join(parts)) from None


def _object(row: object) -> dict:
    if not isinstance(row, dict):
        raise ValueError(f"a record must be a JSON object, got {_show(row)}")
    return row


def _field(row: dict, name: str) -> object:
    if name not in row:
        raise ValueError(f"missing field {name!r}")
    return row[name]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_int(row: dict, name: str) -> int:
    value = _field(row, name)
    if not _is_int(value):
        raise ValueError(f"{name} must be an integer, got {_show(value)}")
    return value  # type: ignore[return-value]


def _json_number(row: dict, name: str) -> float:
    value = _field(row, name)
    if not (_is_int(value) or isinstance(value, float)):
        raise ValueError(f"{name} must be a number, got {_show(value)}")
    return _finite(float(value), name)  # type: ignore[arg-type]


def _csv_int(row: dict[str, str], name: str) -> int:
    text = row[name]
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {text!r}") from None


def _csv_number(row: dict[str, str], name: str) -> float:
    text = row[name]
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    return _finite(value, name)


def _finite(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _show(value: object) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{text} ({type(value).__name__})"
