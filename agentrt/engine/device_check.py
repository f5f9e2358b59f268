"""Is the requested device usable? Checked when an `EngineConfig` is made, before any
model loads, so `--device cuda` on a CPU-only torch is one clear line, not a traceback
from deep inside the loader."""

from __future__ import annotations

import re

_DEVICE = re.compile(r"(cpu|cuda)(?::(\d+))?")


class DeviceError(ValueError):
    """The requested device does not exist here or this torch build cannot use it."""


def check_device(device: str) -> None:
    """Raise `DeviceError` unless `device` is `cpu` or a CUDA device this torch can use."""
    match = _DEVICE.fullmatch(device) if isinstance(device, str) else None
    if match is None:
        raise DeviceError(f"unknown device {device!r}; use cpu, cuda or cuda:N")
    if match.group(1) == "cpu":
        return
    import torch  # only for a CUDA device: the CPU path stays torch-free here

    if not torch.backends.cuda.is_built():
        raise DeviceError(
            f"device {device!r} needs a CUDA build of torch, but torch {torch.__version__} "
            "is CPU-only; use --device cpu, or install a CUDA build of torch "
            "(README: GPU users)"
        )
    count = torch.cuda.device_count()
    index = int(match.group(2) or 0)
    if index >= count:
        found = f"only {count} CUDA device(s)" if count else "no CUDA device"
        raise DeviceError(f"device {device!r}: torch sees {found}; use --device cpu or cuda:N")
