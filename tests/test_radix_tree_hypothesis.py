"""Stateful test: random sequences drive the allocator and radix tree against a model.

The model maps every cached page-aligned prefix (a token tuple) to its page id. Fake
sequences match, lock, allocate, cache (insert) and release like the batcher will.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from radix_helpers import path_tokens

from agentrt.kvmanager import OutOfPagesError, PageAllocator, RadixNode, RadixTree


@dataclass
class FakeSeq:
    tokens: tuple[int, ...]  # whole pages only
    tree_pages: list[int]  # the tree's pages for the first tokens (locked via `node`)
    own_pages: list[int]  # pages the sequence owns, for the remaining tokens
    node: RadixNode
    locked_tokens: tuple[int, ...] = field(default=())


class RadixTreeMachine(RuleBasedStateMachine):
    @initialize(page_size=st.integers(1, 4), num_pages=st.integers(2, 32), data=st.data())
    def setup(self, page_size: int, num_pages: int, data: st.DataObject) -> None:
        self.ps = page_size
        self.allocator = PageAllocator(num_pages)
        self.tree = RadixTree(page_size, self.allocator)
        page = st.tuples(*[st.integers(0, 2)] * page_size)
        # A small pool of distinct pages makes prefixes collide for every page size.
        self.pool = data.draw(st.lists(page, min_size=2, max_size=3, unique=True), "pool")
        self.model: dict[tuple[int, ...], int] = {}
        self.seqs: list[FakeSeq] = []

    # ---- helpers ----------------------------------------------------------------------

    def draw_tokens(self, data: st.DataObject) -> list[int]:
        pages = data.draw(st.lists(st.sampled_from(self.pool), max_size=5), "pages")
        tail = data.draw(st.lists(st.integers(0, 2), max_size=self.ps - 1), "tail")
        return [t for page in pages for t in page] + tail

    def prefixes(self, tokens: tuple[int, ...]) -> list[tuple[int, ...]]:
        return [tokens[: i * self.ps] for i in range(1, len(tokens) // self.ps + 1)]

    def locked_prefixes(self) -> set[tuple[int, ...]]:
        return {p for s in self.seqs for p in self.prefixes(s.locked_tokens)}

    def expected_match(self, tokens: list[int]) -> list[int]:
        pages = []
        for prefix in self.prefixes(tuple(tokens)):
            if prefix not in self.model:
                break
            pages.append(self.model[prefix])
        return pages

    def check_match(self, tokens: list[int]):
        nodes = len(self.tree.nodes())
        m = self.tree.match_prefix(tokens)
        if len(self.tree.nodes()) > nodes:
            event("match split a node" + (" (locked)" if m.node.lock_ref else ""))
        expected = self.expected_match(tokens)
        assert m.pages == expected, f"match {tokens}: got {m.pages}, model {expected}"
        assert m.num_tokens == len(expected) * self.ps
        assert path_tokens(m.node) == tuple(tokens[: m.num_tokens])
        return m

    def evict(self, n: int) -> int:
        before = self.tree.evictable_pages
        freed = self.tree.eviction.evict(n)
        gone = {p for p, page in self.model.items() if self.allocator.is_free(page)}
        assert freed == len(gone), f"evict reported {freed}, freed {len(gone)}"
        assert not gone & self.locked_prefixes(), "a locked prefix was evicted"
        for prefix in gone:
            del self.model[prefix]
        assert freed <= max(before, 0)
        if n > 0 and before >= n:
            assert freed >= n, f"evict({n}) freed only {freed} of {before} evictable"
        if freed < n:
            event("evict ran out of evictable pages")
            assert self.tree.evictable_pages == 0
        return freed

    def alloc(self, n: int) -> list[int] | None:
        """Allocate like the manager: evict first; None when it cannot be done."""
        short = n - self.allocator.num_free
        if short > 0:
            self.evict(short)
        if n > self.allocator.num_free:
            try:
                self.allocator.alloc(n)
            except OutOfPagesError:
                event("out of pages")
                return None
            raise AssertionError("alloc beyond num_free did not raise")
        return self.allocator.alloc(n)

    # ---- rules ------------------------------------------------------------------------

    @rule(data=st.data())
    def match_only(self, data: st.DataObject) -> None:
        self.check_match(self.draw_tokens(data))

    @rule(data=st.data())
    def start_seq(self, data: st.DataObject) -> None:
        self.start(self.draw_tokens(data))

    @precondition(lambda self: any(s.own_pages for s in self.seqs))
    @rule(data=st.data())
    def fork_seq(self, data: st.DataObject) -> None:
        """Start a copy of an uncached prompt: both copies will cache the same tokens."""
        seq = data.draw(st.sampled_from([s for s in self.seqs if s.own_pages]), "seq")
        self.start(list(seq.tokens))

    def start(self, tokens: list[int]) -> None:
        m = self.check_match(tokens)
        self.tree.locks.lock(m.node)
        whole = tuple(tokens[: len(tokens) // self.ps * self.ps])
        seq = FakeSeq(whole, list(m.pages), [], m.node, whole[: m.num_tokens])
        self.seqs.append(seq)
        own = self.alloc(len(whole) // self.ps - len(m.pages))
        if own is None:
            self.seqs.remove(seq)
            self.tree.locks.unlock(m.node)
            return
        seq.own_pages = own

    @precondition(lambda self: self.seqs)
    @rule(data=st.data())
    def extend_seq(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.seqs), "seq")
        pages = data.draw(st.lists(st.sampled_from(self.pool), min_size=1, max_size=2))
        own = self.alloc(len(pages))
        if own is not None:
            seq.tokens += tuple(t for page in pages for t in page)
            seq.own_pages += own

    @precondition(lambda self: self.seqs)
    @rule(data=st.data())
    def cache_seq(self, data: st.DataObject) -> None:
        """Insert the sequence's tokens; it keeps running on the tree's pages."""
        seq = data.draw(st.sampled_from(self.seqs), "seq")
        given = seq.tree_pages + seq.own_pages
        present = [p in self.model for p in self.prefixes(seq.tokens)]
        result = self.tree.insert(seq.tokens, given)
        assert result.num_existing == sum(present) * self.ps
        assert all(present[: len(seq.tree_pages)]), "a locked prefix left the model"
        assert result.pages[: len(seq.tree_pages)] == seq.tree_pages
        assert path_tokens(result.node) == seq.tokens
        duplicates = []
        for prefix, mine, kept in zip(self.prefixes(seq.tokens), given, result.pages, strict=True):
            if prefix in self.model:
                assert kept == self.model[prefix], f"insert replaced the tree's page at {prefix}"
                if mine != kept:
                    event("insert kept the tree's page over the caller's")
                    duplicates.append(mine)
            else:
                assert kept == mine, f"insert did not adopt the caller's page at {prefix}"
                self.model[prefix] = mine
        assert set(duplicates) <= set(seq.own_pages)
        self.allocator.free(duplicates)
        self.tree.locks.lock(result.node)
        self.tree.locks.unlock(seq.node)
        seq.node, seq.locked_tokens = result.node, seq.tokens
        seq.tree_pages, seq.own_pages = list(result.pages), []

    @precondition(lambda self: self.seqs)
    @rule(data=st.data())
    def release_seq(self, data: st.DataObject) -> None:
        seq = data.draw(st.sampled_from(self.seqs), "seq")
        self.seqs.remove(seq)
        self.tree.locks.unlock(seq.node)
        self.allocator.free(seq.own_pages)

    @rule(n=st.integers(0, 8))
    def evict_pages(self, n: int) -> None:
        self.evict(n)

    @precondition(lambda self: not self.seqs)
    @rule()
    def reset(self) -> None:
        self.tree.reset()
        self.model.clear()
        assert self.allocator.num_free == self.allocator.num_pages

    # ---- invariants -------------------------------------------------------------------

    @invariant()
    def integrity(self) -> None:
        self.allocator.check_integrity()
        self.tree.check_integrity()

    @invariant()
    def pages_are_conserved(self) -> None:
        free = {p for p in range(self.allocator.num_pages) if self.allocator.is_free(p)}
        tree = set(self.model.values())
        held = [p for s in self.seqs for p in s.own_pages]
        assert len(tree) == len(self.model) == self.tree.cached_pages
        assert len(held) == len(set(held)), "a page is held by two sequences"
        assert not (free & tree) and not (free & set(held)) and not (tree & set(held))
        assert len(free) + len(tree) + len(held) == self.allocator.num_pages

    @invariant()
    def model_is_prefix_closed(self) -> None:
        for prefix in self.model:
            assert len(prefix) == self.ps or prefix[: -self.ps] in self.model

    @invariant()
    def evictable_matches_model(self) -> None:
        locked = self.locked_prefixes()
        assert locked <= self.model.keys(), "a locked prefix is not cached"
        assert self.tree.evictable_pages == len(self.model) - len(locked)

    @invariant()
    def sequence_handles_stay_valid(self) -> None:
        for seq in self.seqs:
            assert path_tokens(seq.node) == seq.locked_tokens
            assert seq.node is self.tree.root or seq.node.lock_ref >= 1


RadixTreeMachine.TestCase.settings = settings(
    max_examples=200, stateful_step_count=50, deadline=None
)
TestRadixTree = RadixTreeMachine.TestCase
