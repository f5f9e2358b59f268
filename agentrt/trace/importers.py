"""Reading trace files line by line: our own JSONL, Mooncake JSONL and BurstGPT CSV.

A file that cannot be read at all (empty, no records, a bad CSV header, UTF-16, gzip, a
format that cannot be told) raises `TraceFormatError` `FILE: why` (`FILE:LINE: why` for a
header). A bad line raises `TraceFormatError` `FILE:LINE: why`, or with `skip_bad` is
listed in `TraceReader.bad`. `TraceReader.read` counts the non-blank lines (the CSV
header excepted), good and bad.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from agentrt.trace import parsers
from agentrt.trace.schema import CallRecord

FORMATS = ("agentrt", "mooncake", "burstgpt")
DETECT_LINES = 100  # the first non-blank lines looked at to tell the format

_BOMS = {
    b"\xff\xfe": "UTF-16 (or UTF-32) text",
    b"\xfe\xff": "UTF-16 text",
    b"\x00\x00\xfe\xff": "UTF-32 text",
    b"\x1f\x8b": "gzip-compressed",
}
_UTF8_BOM = b"\xef\xbb\xbf"
_AGENTRT_KEYS = {"call_id", "workflow_id", "agent_id", "prompt_len"}
_MOONCAKE_KEYS = {"timestamp", "input_length", "output_length", "hash_ids"}


class TraceFormatError(ValueError):
    """A trace file or line that cannot be read; the message names the file (and line)."""


@dataclass(frozen=True)
class BadLine:
    """A skipped line: where, why, and the call id it would have had (if it names one)."""

    path: Path
    line: int
    why: str
    call_id: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}"


class TraceReader:
    """Iterate the records of one trace file: `for record in TraceReader(path): ...`."""

    def __init__(self, path: str | Path, fmt: str = "auto", skip_bad: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no trace file at {self.path}")
        if fmt != "auto" and fmt not in FORMATS:
            raise ValueError(f"unknown trace format {fmt!r}; use auto or one of {FORMATS}")
        _check_file(self.path)
        self.format = detect_format(self.path) if fmt == "auto" else fmt
        self.skip_bad = skip_bad
        self.read = 0
        self.bad: list[BadLine] = []

    @property
    def skipped(self) -> int:
        return len(self.bad)

    def __iter__(self) -> Iterator[CallRecord]:
        for _, record in self.lines():
            yield record

    def lines(self) -> Iterator[tuple[int, CallRecord]]:
        """(line number, record) for every good line, in file order."""
        texts = _texts(self.path)
        parse, decode = self._parser(texts)
        for lineno, text in texts:
            self.read += 1
            row: object = None
            try:
                if isinstance(text, UnicodeDecodeError):
                    raise ValueError(
                        f"not UTF-8 (byte 0x{text.object[text.start]:02x} at column "
                        f"{text.start + 1})"
                    )
                row = decode(text)
                record = parse(row, lineno)
            except (ValueError, TypeError, OverflowError, csv.Error) as exc:
                call_id = parsers.line_id(self.format, row, lineno)
                self._bad(BadLine(self.path, lineno, str(exc), call_id))
                continue
            yield lineno, record
        if self.read == 0:
            what = "only the CSV header" if self.format == "burstgpt" else "only blank lines"
            raise TraceFormatError(f"{self.path}: no records ({what})")

    def _parser(
        self, texts: Iterator[tuple[int, str | UnicodeDecodeError]]
    ) -> tuple[Callable[[object, int], CallRecord], Callable[[str], object]]:
        if self.format == "agentrt":
            return parsers.agentrt, _json
        if self.format == "mooncake":
            return parsers.mooncake, _json
        lineno, header = next(texts, (0, ""))
        if lineno == 0:
            raise TraceFormatError(f"{self.path}: no records (only blank lines)")
        try:
            if isinstance(header, UnicodeDecodeError):
                raise ValueError("the CSV header is not UTF-8")
            return parsers.BurstGPT(_csv(header)), _csv
        except (ValueError, csv.Error) as exc:
            raise TraceFormatError(f"{self.path}:{lineno}: {exc}") from None

    def _bad(self, bad: BadLine) -> None:
        if not self.skip_bad:
            raise TraceFormatError(str(bad))
        self.bad.append(bad)


def detect_format(path: Path) -> str:
    """`burstgpt` for a .csv file or one whose first line is a BurstGPT header; else the
    first JSON object among the first lines decides: `agentrt` when it has our keys
    (call_id, ...), `mooncake` when it has Mooncake's (timestamp, input_length, ...)."""
    if path.suffix.lower() == ".csv":
        return "burstgpt"
    seen = 0
    for _, text in _texts(path):
        if seen == DETECT_LINES:
            break
        seen += 1
        if not isinstance(text, str):
            continue
        if seen == 1 and all(c in text for c in parsers.BURSTGPT_REQUIRED):
            return "burstgpt"
        try:
            row = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        if isinstance(row, dict):
            if _AGENTRT_KEYS & row.keys():
                return "agentrt"
            if _MOONCAKE_KEYS & row.keys():
                return "mooncake"
    if seen == 0:
        raise TraceFormatError(f"{path}: no records (only blank lines)")
    raise TraceFormatError(
        f"{path}: cannot tell the trace format: none of the first {seen} lines is a JSON "
        "object with our fields (call_id, ...) or Mooncake's (timestamp, input_length, "
        "...), nor a BurstGPT CSV header; pass --format"
    )


def _check_file(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(4)
    if not head:
        raise TraceFormatError(f"{path}: empty file")
    for mark, what in _BOMS.items():
        if head.startswith(mark):
            raise TraceFormatError(f"{path}: {what}; a trace must be UTF-8 text")


def _texts(path: Path) -> Iterator[tuple[int, str | UnicodeDecodeError]]:
    """(line number, text) for each non-blank line; the decoding error for invalid UTF-8."""
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            if lineno == 1:
                line = line.removeprefix(_UTF8_BOM)
            if not line.strip():
                continue
            try:
                yield lineno, line.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                yield lineno, exc


def _json(text: str) -> object:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None


def _csv(text: str) -> list[str]:
    return next(csv.reader([text]))
