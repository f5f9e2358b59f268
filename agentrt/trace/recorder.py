"""Writes call records as JSONL, one line per call, flushed as it is written."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import orjson

from agentrt.trace.schema import CallRecord


class TraceRecorder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[bytes] | None = self.path.open("wb")
        self.count = 0

    def write(self, record: CallRecord) -> None:
        if self._file is None:
            raise RuntimeError(f"trace {self.path} is closed")
        self._file.write(orjson.dumps(record.model_dump(exclude_none=True)) + b"\n")
        self._file.flush()
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TraceRecorder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
