"""docs/ARCHITECTURE.md names the code as it is: every file path it gives exists, and every
dotted name or call in its code spans (`KVCacheManager.prepare`, `pin_ttl(...)`) is made
of names the package defines or uses."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
SPANS = re.findall(r"`([^`\n]+)`", DOC)
FILE = re.compile(r"\b((?:[\w\-]+/)+[\w\-]+\.(?:py|md|json|cpp|h))\b")
NAME = re.compile(r"\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[A-Za-z_]\w*(?=\())")
NOT_NAMES = {"py", "md", "json", "jsonl", "cpp", "h", "png", "csv", "toml"}


def _package_names() -> set[str]:
    source = "\n".join(p.read_text() for p in (ROOT / "agentrt").rglob("*.py"))
    return set(re.findall(r"\b[A-Za-z_]\w*\b", source))


def test_every_file_the_doc_names_exists():
    paths = {m for span in SPANS if not span.startswith("../") for m in FILE.findall(span)}
    assert len(paths) > 30
    files = [
        f.relative_to(ROOT).as_posix()
        for top in ("agentrt", "tests", "docs", "simulations", "examples")
        for f in (ROOT / top).rglob("*")
    ]
    # a path may be given from the repository root or from within its package
    missing = [p for p in paths if not any(f == p or f.endswith("/" + p) for f in files)]
    assert missing == []


def test_every_name_the_doc_gives_is_in_the_package():
    known = _package_names()
    names = {m for span in SPANS for m in NAME.findall(span)}
    assert len(names) > 100
    unknown = sorted(
        name
        for name in names
        if name.split(".")[-1] not in NOT_NAMES
        and any(part not in known for part in name.split("."))
    )
    assert unknown == []
