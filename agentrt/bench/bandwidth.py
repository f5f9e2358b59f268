"""Memory-bandwidth probes for `bench engine`'s roofline and the sim calibrator.

A decode step reads the weights (and the KV of its sequences) once: its bound is a
sustained *read*, so the roofline uses `read_bandwidth_gbs` (a reduction over a buffer
at least 4x the last-level cache, with the engine's thread count), cross-checked by
`numpy_read_bandwidth_gbs` (a numpy reduction, the buffer split over as many Python
threads). `copy_bytes_per_s` is a different quantity: how many bytes a copy moves per
second, which is what the calibrator's host<->device transfer rate means.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from agentrt.engine.compute_thread import on_compute_thread

MIN_PROBE_BYTES = 256 * 1024 * 1024
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_L3_LINE = re.compile(r"^L3 cache:\s*([\d.]+)\s*([KMG]?)(?:i?B)?\b", re.MULTILINE)


def parse_l3_bytes(lscpu_text: str) -> int | None:
    """Total L3 bytes from `lscpu` output ("L3 cache: 33554432 (1 instance)" with -B, or
    "32 MiB (1 instance)"); None when it names no L3."""
    match = _L3_LINE.search(lscpu_text)
    if match is None:
        return None
    return round(float(match.group(1)) * _UNITS[match.group(2)])


def l3_cache_bytes() -> int | None:
    """This machine's total L3 size as `lscpu -B` reports it (None: no lscpu, or no L3)."""
    try:
        text = subprocess.run(
            ["lscpu", "-B"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_l3_bytes(text)


def probe_bytes(l3_bytes: int | None) -> int:
    """Buffer size for a sustained-bandwidth probe: 4x the L3, at least 256 MiB."""
    return max(MIN_PROBE_BYTES, 4 * (l3_bytes or 0))


def _median_seconds(fn: Callable[[], object], repeats: int, sync: Callable[[], None]) -> float:
    fn()  # first touch: pages faulted in, caches in their steady state
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _sync_for(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else lambda: None


def read_bandwidth_gbs(num_bytes: int, device: str = "cpu", repeats: int = 7) -> float:
    """Sustained read bandwidth, GB/s: bytes summed / median time of `tensor.sum()` over a
    float32 buffer of `num_bytes`, run on the compute thread (the engine's OpenMP team and
    thread count)."""
    return on_compute_thread(_read_bandwidth_gbs, num_bytes, device, repeats)


def _read_bandwidth_gbs(num_bytes: int, device: str, repeats: int) -> float:
    buf = torch.ones(num_bytes // 4, dtype=torch.float32, device=device)
    seconds = _median_seconds(buf.sum, repeats, _sync_for(device))
    return buf.numel() * 4 / seconds / 1e9


class ReadProbe:
    """One `tensor.sum()` over a float32 buffer of `num_bytes` per call, on the compute
    thread. `gbs` is the bytes read over the time all calls took: called between the
    steps of a timed run, it measures the bandwidth of the same moments as the steps."""

    def __init__(self, num_bytes: int, device: str = "cpu") -> None:
        self._buf = on_compute_thread(
            torch.ones, num_bytes // 4, dtype=torch.float32, device=device
        )
        self._sync = _sync_for(device)
        self._seconds: list[float] = []
        on_compute_thread(self._read)  # first touch, not counted
        self._seconds.clear()

    def __call__(self) -> None:
        on_compute_thread(self._read)

    def _read(self) -> None:
        self._sync()
        start = time.perf_counter()
        self._buf.sum()
        self._sync()
        self._seconds.append(time.perf_counter() - start)

    @property
    def gbs(self) -> float:
        """GB/s over every read so far (ValueError before the first)."""
        if not self._seconds:
            raise ValueError("the probe has not read yet")
        return self._buf.numel() * 4 * len(self._seconds) / sum(self._seconds) / 1e9


def numpy_read_bandwidth_gbs(num_bytes: int, threads: int, repeats: int = 7) -> float:
    """The cross-check: the same read as numpy's `max` over a float32 buffer split into
    `threads` parts, each in its own Python thread (numpy releases the GIL). Not `sum`:
    numpy's pairwise float32 sum is compute-bound near DRAM speed on one core."""
    buf = np.ones(num_bytes // 4, dtype=np.float32)
    parts = np.array_split(buf, threads)
    with ThreadPoolExecutor(threads) as pool:
        seconds = _median_seconds(lambda: list(pool.map(np.max, parts)), repeats, lambda: None)
    return buf.nbytes / seconds / 1e9


def copy_bytes_per_s(num_bytes: int = MIN_PROBE_BYTES, device: str = "cpu") -> float:
    """Bytes a copy moves per second (`dst.copy_(src)` of `num_bytes`, median of 7, on the
    compute thread): a copy of N bytes takes N / this. It reads N and writes N, so the
    memory traffic is twice this figure. This is the bytes-moved-per-second rate the sim
    calibrator (cost_model/calibrate.py) records."""
    return on_compute_thread(_copy_bytes_per_s, num_bytes, device)


def _copy_bytes_per_s(num_bytes: int, device: str) -> float:
    src = torch.ones(num_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    seconds = _median_seconds(lambda: dst.copy_(src), 7, _sync_for(device))
    return src.numel() * 4 / seconds


def measure_bandwidth(device: str = "cpu") -> dict:
    """Every probe on one buffer size (4x L3, >= 256 MiB): read (torch, the engine's
    threads), the read cross-check (numpy; CPU only, None on a GPU) and the copy's traffic
    (bytes read + written per second), all in GB/s."""
    l3 = l3_cache_bytes()
    size = probe_bytes(l3)
    threads = on_compute_thread(torch.get_num_threads)
    on_gpu = device.startswith("cuda")
    return {
        "l3_bytes": l3,
        "probe_bytes": size,
        "threads": threads,
        "read_gbs": read_bandwidth_gbs(size, device),
        "read_numpy_gbs": None if on_gpu else numpy_read_bandwidth_gbs(size, threads),
        "copy_traffic_gbs": 2 * copy_bytes_per_s(size, device) / 1e9,
    }
