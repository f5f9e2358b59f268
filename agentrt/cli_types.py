"""argparse helpers: the flags most commands share and `type=` converters for numbers.

Each converter rejects what the flag cannot mean (NaN, infinities, values out of range) while
the command line is parsed, so the command exits 2 before any work starts.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from agentrt.output_files import add_json_flag


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """`--model`, `--device` and `--json`: the flags most commands take."""
    parser.add_argument(
        "--model",
        help="HF model directory, .gguf file or hub id (default: embedded SmolLM2-135M-Instruct)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default: cpu)")
    add_json_flag(parser)


def add_host_load_flag(parser: argparse.ArgumentParser) -> None:
    """`--recompute-when-no-room` (`EngineConfig.host_load_waits` off)."""
    parser.add_argument(
        "--recompute-when-no-room",
        action="store_true",
        help="recompute a host-held prefix that the device has no room to load now, as "
        "SGLang's HiCache does (default: the request waits at the head of the queue until "
        "running requests free room, then loads it)",
    )


def _integer(text: str, rule: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer {rule}, got {text!r}") from None


def _finite(text: str, rule: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number{rule}, got {text!r}")
    return value


def int_at_least(low: int, why: str = "") -> Callable[[str], int]:
    """An integer >= `low`; `why` explains the bound in the message (e.g. "one KV page")."""
    rule = f">= {low}" + (f" ({why})" if why else "")

    def convert(text: str) -> int:
        value = _integer(text, rule)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer {rule}, got {text!r}")
        return value

    return convert


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def port(text: str) -> int:
    """A TCP port, 0-65535 (0: any free port)."""
    value = _integer(text, "in [0, 65535]")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 65535], got {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (a rate, a speed-up, a scale)."""
    value = _finite(text, " > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def nonneg_float(text: str) -> float:
    """A finite number >= 0 (a wait that may be off)."""
    value = _finite(text, " >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """Any finite number; its range is checked where the value is used."""
    return _finite(text, "")


def fraction(text: str) -> float:
    """A number in [0, 1] (a share of a pool)."""
    value = _finite(text, " in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text!r}")
    return value
