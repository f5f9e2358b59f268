"""`agentrt bench serve` starts `agentrt serve` in a child process with `engine_argv`: the
child builds the same engine as the bench's own flags say, for every engine flag."""

from __future__ import annotations

import argparse

from agentrt.cli import build_parser
from agentrt.serve.engine_flags import add_engine_flags, engine_argv, engine_config

# a value other than the default for each engine flag
NOT_DEFAULT = {
    "--model": "some/model",
    "--device": "cuda:1",
    "--dtype": "float32",
    "--backend": "sim",
    "--profile": "l4-llama3-8b",
    "--kv-cache-tokens": "4096",
    "--page-size": "8",
    "--max-num-seqs": "7",
    "--max-num-batched-tokens": "256",
    "--eviction-policy": "kvflow",
    "--host-kv-cache-tokens": "8192",
    "--recompute-when-no-room": None,
    "--seed": "3",
    "--batch-invariant": None,
}


def _engine_flags() -> set[str]:
    parser = argparse.ArgumentParser()
    add_engine_flags(parser)
    return {a.option_strings[-1] for a in parser._actions if a.option_strings} - {"--help"}


def test_every_engine_flag_reaches_the_child_server():
    assert set(NOT_DEFAULT) == _engine_flags()  # a new engine flag needs a value here
    given = [x for flag, value in NOT_DEFAULT.items() for x in (flag, value) if x is not None]
    parser = build_parser()
    bench = parser.parse_args(["bench", "serve", *given])
    child = parser.parse_args(["serve", *engine_argv(bench)])
    assert engine_config(child) == engine_config(bench)
    assert engine_config(bench) != engine_config(parser.parse_args(["bench", "serve"]))
