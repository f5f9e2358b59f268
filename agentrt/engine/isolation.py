"""When a step fails: find the requests at fault so that only they fail.

Sampling failures come per request (`SamplingFailed`). Any other exception fails the
forward pass, so the batch is split in halves and each re-run, down to single requests:
a part that runs gives its requests their tokens, a single request that still fails is
the culprit, and a transient failure fails nobody. A healthy step costs nothing extra.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agentrt.engine.batcher import ScheduledBatch, ScheduledSeq
from agentrt.engine.runner import ModelRunner, SamplingFailed
from agentrt.engine.sequence import Sequence


@dataclass
class IsolatedStep:
    """The outcome of a failed step, after isolation: `ran` holds the items that ran
    (in batch order) and `tokens` their sampled tokens, as `execute` returns them;
    `failed` maps each failed sequence to a one-line reason."""

    ran: ScheduledBatch = field(default_factory=ScheduledBatch)
    tokens: list[int] = field(default_factory=list)
    failed: dict[Sequence, str] = field(default_factory=dict)

    def extend(self, other: IsolatedStep) -> None:
        self.ran.items += other.ran.items
        self.tokens += other.tokens
        self.failed.update(other.failed)


def reason(stage: str, exc: BaseException) -> str:
    """One line: where it failed and the exception's first line."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    line = f"{stage} failed: {type(exc).__name__}"
    return f"{line}: {first}" if first else line


def isolate(runner: ModelRunner, batch: ScheduledBatch, exc: Exception) -> IsolatedStep:
    """``batch`` failed with ``exc`` in ``runner.execute``: fail the requests at fault
    and run the others (re-running parts of the batch where the forward pass failed)."""
    if isinstance(exc, SamplingFailed):
        return _drop_failed_samples(batch, exc)
    items = batch.items
    if len(items) == 1:
        return IsolatedStep(failed={items[0].seq: reason("model step", exc)})
    mid = len(items) // 2  # halves of a decodes-first batch stay decodes-first
    step = IsolatedStep()
    for half in (items[:mid], items[mid:]):
        step.extend(_run(runner, ScheduledBatch(list(half))))
    return step


def _run(runner: ModelRunner, batch: ScheduledBatch) -> IsolatedStep:
    try:
        tokens = runner.execute(batch)
    except Exception as exc:  # attributed to its requests by `isolate`
        return isolate(runner, batch, exc)
    return IsolatedStep(batch, tokens)


def _drop_failed_samples(batch: ScheduledBatch, failure: SamplingFailed) -> IsolatedStep:
    step = IsolatedStep()
    items: list[ScheduledSeq] = step.ran.items
    tokens = iter(failure.tokens)
    errors = failure.errors
    for item in batch.items:
        token = next(tokens) if item.samples else None
        error = errors.get(item.seq.request_id)
        if error is not None:
            step.failed[item.seq] = reason("sampling", error)
            continue
        items.append(item)
        if token is not None:
            step.tokens.append(token)
    return step
