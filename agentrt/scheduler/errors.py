"""Why a workflow instance failed, in words a person can act on.

Each error fails one workflow instance only (`WorkflowResult.error`). `describe(exc)` is
the one line the CLI prints; `unwrap(exc)` takes a lone error out of exception groups.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


class WorkflowCancelledError(Exception):
    """The workflow was cancelled by `Runtime.cancel`."""


class WorkflowTimeoutError(TimeoutError):
    """The workflow ran past the `timeout=` given to `run` / `submit`."""

    def __init__(self, workflow_id: str, seconds: float) -> None:
        self.workflow_id, self.seconds = workflow_id, seconds
        super().__init__(
            f"workflow {workflow_id} ran past its timeout of {seconds:g} s; its running "
            "agents were cancelled and their model calls aborted"
        )


class AgentTimeoutError(TimeoutError):
    """One run of an agent took longer than the agent's `timeout=`."""

    def __init__(self, workflow_id: str, agent: str, seconds: float) -> None:
        self.workflow_id, self.agent, self.seconds = workflow_id, agent, seconds
        super().__init__(
            f"agent {agent!r} of workflow {workflow_id} ran past its timeout of {seconds:g} s"
        )


class AgentExitError(RuntimeError):
    """An agent (or a tool it ran) raised `SystemExit`, `KeyboardInterrupt` or another
    `BaseException` that is not an `Exception`; the original is the `__cause__`."""

    def __init__(self, agent: str, exc: BaseException) -> None:
        self.agent = agent
        if isinstance(exc, SystemExit):
            what = f"called sys.exit({exc.code!r})"
        else:
            what = f"raised {type(exc).__name__}{f': {exc}' if str(exc) else ''}"
        super().__init__(f"agent {agent!r} {what}; only its own workflow was stopped")


class ModelCallError(RuntimeError):
    """The engine finished a model call with an error (e.g. the prompt does not fit)."""


def unwrap(exc: BaseException) -> BaseException:
    """The single leaf of nested one-member exception groups, else `exc` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def describe(exc: BaseException) -> str:
    """One line: the error's type and message (a group: its members, `; `-joined)."""
    exc = unwrap(exc)
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
