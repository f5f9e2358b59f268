"""The running sequences of a sim engine in steady decode, advanced without being touched.

A sim engine's decode step is fully determined (a token that is a function of request
and position, a new page every `page_size` steps, a finish at the length limit), so
`DecodeGroup` advances its members by counting steps: a step costs its events (new pages,
finishes), not one update per sequence. A member's `num_computed_tokens` and `token_ids`
are current as of group step `since[seq]`; `materialize` appends the steps run since.
The `CostModelRunner` owns the group and moves it on; the engine allocates the members'
pages and finishes them.
"""

from __future__ import annotations

from operator import attrgetter

from agentrt.engine.cost_model.synthetic_tokens import RequestTokens
from agentrt.engine.sequence import Sequence

_admission = attrgetter("admission")  # `running` order


class DecodeGroup:
    """Members decode one token in every group step; their events are kept per step.

    ``tokens``: the tokens the members sample (the runner's). ``max_model_len``: the
    engine's length limit.
    """

    def __init__(self, page_size: int, max_model_len: int, tokens: RequestTokens) -> None:
        self.page_size = page_size
        self.max_model_len = max_model_len
        self._tokens = tokens
        self.steps = 0  # group steps run so far
        self._ends: list[float] = []  # the clock at the end of each group step
        self.since: dict[Sequence, int] = {}  # member -> the step its fields are current at
        self._first: dict[Sequence, int] = {}  # member -> its first step as a member
        # (request id, first step, steps run) of each member that left, while recording:
        # it decoded one token at the end of each of `_ends[first:steps]`
        self._left: list[tuple[str, int, int]] | None = None
        self._page_step: dict[Sequence, int] = {}  # member -> the step it needs a page in
        self._finish_step: dict[Sequence, int] = {}  # member -> the step it finishes in
        self._pages: dict[int, dict[Sequence, None]] = {}  # step -> who needs a page
        self._finishes: dict[int, dict[Sequence, None]] = {}  # step -> who finishes
        self._context = 0  # sum over members of num_computed_tokens + 1 - since

    def __len__(self) -> int:
        return len(self.since)

    def __contains__(self, seq: object) -> bool:
        return seq in self.since

    def join(self, seq: Sequence) -> None:
        """Make ``seq`` a member from the next step on. It must be decoding (one token
        left to compute, at least one output token) with no stop condition but length."""
        step = self.steps
        self.since[seq] = step
        self._first[seq] = step
        done = seq.num_computed_tokens
        total = len(seq.token_ids)
        self._context += done + 1 - step
        left = seq.params.max_tokens - (total - len(seq.prompt_token_ids))
        if self.max_model_len - total < left:
            left = self.max_model_len - total
        finish = step + max(left, 1) - 1
        self._finish_step[seq] = finish
        self._finishes.setdefault(finish, {})[seq] = None
        # step `step + i` computes token done + i: it needs room for done + i + 1
        page = step + len(seq.block_table) * self.page_size - done
        self._page_step[seq] = page
        self._pages.setdefault(page, {})[seq] = None

    def context(self) -> int:
        """KV tokens the members read in the step about to run (each its context plus
        the token it feeds)."""
        return self._context + len(self.since) * self.steps

    def pages_due(self) -> list[Sequence]:
        """Members that need a new page in the step about to run, in `running` order."""
        return self._due(self._pages.get(self.steps))

    def paged(self, seqs: list[Sequence]) -> None:
        """``seqs`` (the `pages_due`) got their page: the next is due a page later."""
        if not seqs:
            return
        del self._pages[self.steps]
        later = self.steps + self.page_size
        bucket = self._pages.setdefault(later, {})
        for seq in seqs:
            bucket[seq] = None
            self._page_step[seq] = later

    def finishing(self) -> list[Sequence]:
        """Members that reach their length limit in the step about to run, in `running`
        order."""
        return self._due(self._finishes.get(self.steps))

    def advance(self, end: float) -> None:
        """A step ran, ending at clock ``end``; its events were handled (those due a
        page got it; those due to finish leave next)."""
        self._ends.append(end)
        self.steps += 1

    def last_step_ends(self, n: int) -> list[float]:
        """The clock at the end of each of the last ``n`` group steps."""
        return self._ends[len(self._ends) - n :]

    def record_leavers(self, on: bool) -> None:
        """Start (or stop) recording the members that leave, for `take_leavers`."""
        self._left = [] if on else None

    def take_leavers(self) -> list[tuple[str, list[float]]]:
        """The members that left since the last call (while recording), in order, each
        as (request id, the end times of the steps it decoded a token in as a member)."""
        left, ends = self._left or [], self._ends
        self._left = [] if self._left is not None else None
        return [(rid, ends[first:last]) for rid, first, last in left]

    def decoded_as_member(self, seq: Sequence) -> bool:
        """Whether ``seq`` is a member that decoded in a step as a member (its tokens
        since joining are `take_leavers`' to report, once it leaves)."""
        first = self._first.get(seq)
        return first is not None and first != self.steps

    def materialize(self, seq: Sequence) -> None:
        """Bring a member's tokens and computed count up to date."""
        k = self.steps - self.since[seq]
        if k:
            self._tokens.append(seq, k)
            seq.num_computed_tokens += k
            self.since[seq] = self.steps

    def leave(self, seq: Sequence) -> None:
        """Materialize ``seq`` and drop it and its events from the group."""
        self.materialize(seq)
        del self.since[seq]
        first = self._first.pop(seq)
        if self._left is not None:
            self._left.append((seq.request_id, first, self.steps))
        self._context -= seq.num_computed_tokens + 1 - self.steps
        for events, at in ((self._pages, self._page_step), (self._finishes, self._finish_step)):
            step = at.pop(seq)
            bucket = events[step]
            del bucket[seq]
            if not bucket:
                del events[step]

    def dissolve(self) -> None:
        """Materialize every member and empty the group."""
        for seq in list(self.since):
            self.leave(seq)

    @staticmethod
    def _due(bucket: dict[Sequence, None] | None) -> list[Sequence]:
        if not bucket:
            return []
        due = list(bucket)
        if len(due) > 1:
            due.sort(key=_admission)
        return due
