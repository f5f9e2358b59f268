"""Output files of the commands (`--json`, `--plot`, `--timeline`, `--trace`, `--out`).

Paths are checked while the command line is parsed (`output_path`): the extension, not
a directory, a (nearest existing) directory this process can create files in, and for a
plot that matplotlib imports. Files are written atomically (`atomic_write_bytes`): an
interrupted or failed write leaves the old file (or none), never a partial one.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

JSON = (".json",)
JSONL = (".jsonl",)
PLOT = (".png", ".pdf", ".svg")

_UMASK = os.umask(0o022)
os.umask(_UMASK)


class OutputPathError(ValueError):
    """An output path that cannot be written; the message names the path and why."""


def check_output(path: str | Path, suffixes: tuple[str, ...], plot: bool = False) -> Path:
    """`path` as a Path, or OutputPathError saying why it cannot be written."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise OutputPathError(f"{str(path)!r} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise OutputPathError(f"{str(path)!r} is a directory")
    folder = next((p for p in path.absolute().parents if p.exists()), Path("."))
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {str(path)!r}: {str(folder)!r} is not a directory")
    try:  # the write itself is the only reliable test (root, read-only mounts, ACLs)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".agentrt-probe-")
    except OSError as exc:
        raise OutputPathError(
            f"cannot write {str(path)!r}: cannot create files in {str(folder)!r} "
            f"({exc.strerror or exc})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    if plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise OutputPathError(
                f"cannot draw {str(path)!r}: matplotlib is not installed (pip install matplotlib)"
            ) from None
    return path


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """`--json PATH.json`, checked while parsing (`output_path`): where results go."""
    parser.add_argument(
        "--json", metavar="PATH.json", type=output_path(JSON), help="write results as JSON"
    )


def output_path(suffixes: tuple[str, ...], plot: bool = False) -> Callable[[str], Path]:
    """An argparse `type=` that checks an output path up front (see `check_output`)."""

    def convert(text: str) -> Path:
        try:
            return check_output(text, suffixes, plot)
        except OutputPathError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def write_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Render a matplotlib figure in the format of `path`'s suffix and write it atomically
    (its folder made if missing); the figure is closed either way."""
    import io

    import matplotlib.pyplot as plt

    path = Path(path)
    image = io.BytesIO()
    try:
        fig.savefig(image, format=path.suffix.lstrip(".").lower(), dpi=dpi)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, image.getvalue())
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # interrupted too: no temporary file left behind
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())
