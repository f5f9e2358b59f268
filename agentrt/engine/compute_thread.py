"""One thread per process runs all of the engine's tensor work.

GNU OpenMP keeps a thread team per thread that starts parallel regions. Once two threads
have each started one (say the model loaded on the main thread and steps run from a
worker), libgomp counts more busy threads than cores and throttles every team's
spin-wait, so each parallel op pays a futex wake-up: on 2 cores we measured bf16 matmuls
35% and whole decode steps ~50% slower. Running model loading and every step on this one
thread keeps a single team, whichever thread (event loop, worker, main) asks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_thread: threading.Thread | None = None


def _remember_thread() -> None:
    global _thread
    _thread = threading.current_thread()


def _get_executor() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                1, thread_name_prefix="agentrt-compute", initializer=_remember_thread
            )
        return _executor


def _forget_after_fork() -> None:
    """A forked child has no compute thread: start its own on first use."""
    global _executor, _thread, _lock
    _executor, _thread, _lock = None, None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def on_compute_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Call `fn` on the compute thread and return its result (exceptions propagate).
    Called from the compute thread itself, it runs inline."""
    if is_compute_thread():
        return fn(*args, **kwargs)
    return submit_to_compute_thread(fn, *args, **kwargs).result()


def submit_to_compute_thread(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """Queue `fn` on the compute thread; the future completes there (for callers that
    must not block, like an event loop)."""
    return _get_executor().submit(fn, *args, **kwargs)


def is_compute_thread() -> bool:
    return threading.current_thread() is _thread
