"""Bad trace input, class by class: each bad line is `FILE:LINE: why` (exit 2), or with
--skip-bad counted and listed; every line read is accounted for (completed + failed +
skipped == read); a file that cannot be read at all is exit 2 either way; a replay where
nothing completes says why and exits 1."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentrt.cli import main
from agentrt.trace.importers import TraceFormatError
from agentrt.trace.load import load_trace

# -- lines ------------------------------------------------------------------------------


def _mc(t: float = 0, n: int = 100, out: int = 4, hashes=None, **change) -> bytes:
    row = {"timestamp": t, "input_length": n, "output_length": out}
    row["hash_ids"] = hashes if hashes is not None else list(range(-(-n // 512)))
    row.update(change)
    return orjson.dumps(row)


def _ours(call_id: str, parents=(), t: float = 0.0, **change) -> bytes:
    row = {
        "version": 1,
        "call_id": call_id,
        "workflow_id": "w",
        "agent_id": "a",
        "step": len(parents),
        "parents": list(parents),
        "arrival_s": t,
        "prompt_len": 3,
        "prompt_token_ids": [5, 6, 7],
        "output_len": 2,
    }
    row.update(change)
    return orjson.dumps(row)


HEADER = b"Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens"


def _bg(t="0.0", session="7", elapsed="1.0", prompt="100", out="5") -> bytes:
    return f"{t},{session},{elapsed},ChatGPT,{prompt},{out},0".encode()


def _case(name: str, lines: list[bytes], first: int, why: str, skipped: int = 1):
    """A trace with bad lines: `first` is the first bad line and `why` its reason (a
    regex); with --skip-bad, `skipped` lines are skipped and all the others complete."""
    return pytest.param(lines, first, why, skipped, id=name)


M0, M1, M2 = _mc(0), _mc(10), _mc(20)  # good Mooncake lines
A, B = _ours("a"), _ours("b", ["a"], 1.0)  # good lines of ours: b waits on a
G = _bg()  # a good BurstGPT row (session 7)

LINE_CASES = [
    # Mooncake JSONL (line 1 is good, so the format is told from it)
    _case("not-json", [M0, b'{"timestamp": 5, "input_le', M1, M2], 2, "not JSON"),
    _case(
        "invalid-utf8",
        [M0, b'{"timestamp": \xff\xfe 1}', M1],
        2,
        r"not UTF-8 \(byte 0xff at column 15\)",
    ),
    _case("binary-garbage", [M0, bytes(range(1, 9)) + b"\x00\x80\x81"], 2, "not UTF-8"),
    _case("nul-bytes", [M0, b"\x00\x00\x00"], 2, "not JSON"),
    _case(
        "json-array", [M0, b"[1, 2]"], 2, r"a record must be a JSON object, got \[1, 2\] \(list\)"
    ),
    _case(
        "missing-field",
        [M0, b'{"timestamp": 1, "output_length": 4, "hash_ids": [1]}'],
        2,
        "missing field 'input_length'",
    ),
    _case(
        "string-for-int",
        [M0, _mc(1, input_length="100")],
        2,
        r"input_length must be an integer, got '100' \(str\)",
    ),
    _case(
        "float-for-int",
        [M0, _mc(1, output_length=4.5)],
        2,
        r"output_length must be an integer, got 4.5 \(float\)",
    ),
    _case(
        "bool-for-int",
        [M0, _mc(1, output_length=True)],
        2,
        r"output_length must be an integer, got True \(bool\)",
    ),
    _case(
        "negative-length",
        [M0, _mc(1, input_length=-5)],
        2,
        r"prompt_len \(input_length\): Input should be greater than or equal to 1",
    ),
    _case(
        "zero-prompt", [M0, _mc(1, input_length=0, hash_ids=[])], 2, r"prompt_len \(input_length\)"
    ),
    _case("negative-timestamp", [M0, _mc(-1)], 2, "timestamp must be >= 0, got -1"),
    _case("nan-string", [M0, _mc(timestamp="NaN")], 2, "timestamp must be a number"),
    _case("nan-literal", [M0, M1.replace(b"10", b"NaN", 1)], 2, "not JSON"),
    _case("inf-number", [M0, M1.replace(b"10", b"1e999", 1)], 2, "not JSON.*infinity"),
    _case(
        "huge-int", [M0, M1.replace(b":4", b":" + b"9" * 30)], 2, "output_length must be an integer"
    ),
    _case(
        "hash-ids-vs-length",
        [M0, _mc(1, n=600, hashes=[1, 2, 3])],
        2,
        r"3 hash_ids for 600 tokens in blocks of 512 \(expected 2\)",
    ),
    _case("float-hash-ids", [M0, _mc(1, hashes=[1.5])], 2, "hash_ids must be a list of integers"),
    # our JSONL
    _case(
        "string-for-int-ours", [A, _ours("x", step="1")], 2, "step: Input should be a valid integer"
    ),
    _case(
        "float-token-ids",
        [A, _ours("x", prompt_token_ids=[5.0, 6, 7])],
        2,
        r"prompt_token_ids\.0: Input should be a valid integer",
    ),
    _case(
        "negative-token-id",
        [A, _ours("x", prompt_token_ids=[5, -6, 7])],
        2,
        r"prompt_token_ids\.1: Input should be greater than or equal to 0",
    ),
    _case(
        "ids-vs-length",
        [A, _ours("x", prompt_len=4)],
        2,
        "prompt_token_ids has 3 ids but prompt_len is 4",
    ),
    _case(
        "unknown-field", [A, _ours("x", colour="red")], 2, "colour: Extra inputs are not permitted"
    ),
    _case("int-call-id", [A, _ours(7)], 2, "call_id: Input should be a valid string"),
    _case("future-version", [A, _ours("x", version=2)], 2, "trace version 2 is not supported"),
    _case(
        "negative-think",
        [A, _ours("x", think_time_s=-1.0)],
        2,
        "think_time_s: Input should be greater than or equal to 0",
    ),
    _case("self-parent", [A, _ours("x", ["x"])], 2, "call 'x' lists itself as a parent"),
    _case("parent-twice", [A, _ours("x", ["a", "a"])], 2, "parents lists a call more than once"),
    _case("unknown-parent", [A, B, _ours("x", ["nope"])], 3, "parent 'nope' is not in the trace"),
    _case(
        "duplicate-call-id",
        [A, B, _ours("a", t=2.0)],
        3,
        r"duplicate call_id 'a' \(first on line 1\)",
    ),
    # x and y wait on each other; z waits on y: all three skipped, a and b run
    _case(
        "cycle",
        [A, _ours("x", ["y"]), _ours("y", ["x"]), _ours("z", ["y"]), B],
        2,
        r"dependency cycle: 'x' \(line 2\) -> 'y' \(line 3\) -> 'x' \(line 2\)",
        3,
    ),
    # a is bad; b waits on a and c on b: skipped too ("depends on skipped line N")
    _case(
        "dependant-of-bad-line",
        [_ours("a", step=-1), _ours("b", ["a"]), _ours("c", ["b"]), _ours("d")],
        1,
        "step: Input should be greater",
        3,
    ),
    # BurstGPT CSV
    _case("column-count", [HEADER, G, b"1.0,8,1.0,ChatGPT,100"], 3, "5 fields, the header has 7"),
    _case(
        "non-numeric",
        [HEADER, G, _bg("2.0", "8", prompt="abc")],
        3,
        "Request tokens must be an integer, got 'abc'",
    ),
    _case("nan-csv", [HEADER, G, _bg("nan", "8")], 3, "Timestamp must be finite, got nan"),
    _case(
        "inf-csv",
        [HEADER, G, _bg("2.0", "8", out="inf")],
        3,
        "Response tokens must be an integer, got 'inf'",
    ),
    _case(
        "float-tokens-csv",
        [HEADER, G, _bg("2.0", "8", prompt="10.5")],
        3,
        "Request tokens must be an integer, got '10.5'",
    ),
    _case(
        "negative-elapsed",
        [HEADER, G, _bg("2.0", "8", elapsed="-1")],
        3,
        "Elapsed time must be >= 0",
    ),
    _case(
        "zero-request-tokens",
        [HEADER, G, _bg("2.0", "8", prompt="0")],
        3,
        r"prompt_len \(Request tokens\): Input should be greater than or equal to 1",
    ),
    _case(
        "session-goes-back",
        [HEADER, _bg("5.0"), _bg("3.0")],
        3,
        r"Timestamp 3.0 goes back before this session's previous request \(line 2, 5.0\)",
    ),
    # the session's later rows wait on the bad one: skipped with it; session 8 runs
    _case(
        "session-after-bad-row",
        [HEADER, _bg("x"), _bg("1.0"), _bg("2.0"), _bg("0.5", "8")],
        2,
        "Timestamp must be a number, got 'x'",
        3,
    ),
]


def _write(tmp_path: Path, name: str, lines: list[bytes]) -> Path:
    path = tmp_path / name
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _replay(path: Path, *extra: str) -> int:
    return main(["replay", str(path), "--backend", "sim", "--jobs", "1", "--no-progress", *extra])


def _accounted(result: dict) -> None:
    assert {"read", "completed", "failed", "skipped", "failures", "skipped_lines"} <= set(result)
    assert result["completed"] + result["failed"] + result["skipped"] == result["read"]
    assert len(result["skipped_lines"]) == result["skipped"]
    assert sum(result["failures"].values()) == result["failed"]


@pytest.mark.parametrize(("lines", "first", "why", "skipped"), LINE_CASES)
def test_bad_line_is_named_or_skipped_and_counted(tmp_path, capsys, lines, first, why, skipped):
    csv = lines[0] == HEADER
    path = _write(tmp_path, "trace.csv" if csv else "trace.jsonl", lines)
    assert _replay(path) == 2
    err = capsys.readouterr().err.strip()
    assert re.fullmatch(rf"agentrt: error: {re.escape(str(path))}:{first}: .*{why}.*", err), err
    out = tmp_path / "r.json"
    assert _replay(path, "--skip-bad", "--policy", "lru,kvflow", "--json", str(out)) == 0
    printed = capsys.readouterr().out
    results = orjson.loads(out.read_bytes())
    for result in results.values():
        _accounted(result)
        assert result["read"] == len(lines) - csv
        assert result["skipped"] == skipped and result["failed"] == 0
        assert result["completed"] == result["read"] - skipped
        bad = result["skipped_lines"][0]
        assert bad["line"] == first and re.search(why, bad["why"])
    assert f"skipped {skipped} line" in printed
    assert f"{path}:{first}: " in printed


def test_dependants_of_a_skipped_line_say_so(tmp_path):
    lines = [_ours("a", step=-1), _ours("b", ["a"]), _ours("c", ["b"]), _ours("d")]
    trace = load_trace(_write(tmp_path, "t.jsonl", lines), skip_bad=True)
    assert [r.call_id for r in trace.records] == ["d"]
    assert [(b.line, b.why) for b in trace.skipped[1:]] == [
        (2, "depends on skipped line 1 ('a')"),
        (3, "depends on skipped line 2 ('b')"),
    ]


FILE_CASES = [
    ("empty", "t.jsonl", b"", "empty file"),
    ("empty-csv", "t.csv", b"", "empty file"),
    ("blank-lines", "t.jsonl", b"\n  \n\r\n\t\n", r"no records \(only blank lines\)"),
    ("header-only", "t.csv", HEADER + b"\n\n", r"no records \(only the CSV header\)"),
    (
        "header-lacks-columns",
        "t.csv",
        b"Timestamp,Model\n1.0,x\n",
        r":1: not a BurstGPT header: no column 'Request tokens', 'Response tokens'",
    ),
    ("utf16", "t.jsonl", (M0.decode() + "\n").encode("utf-16"), "UTF-16"),
    ("utf16-csv", "t.csv", (HEADER.decode() + "\n" + _bg().decode()).encode("utf-16"), "UTF-16"),
    ("gzip", "t.jsonl", gzip.compress(_mc(0) + b"\n"), "gzip-compressed"),
    ("cannot-tell", "t.jsonl", b"hello\nworld\n{}\n", "cannot tell the trace format"),
]


@pytest.mark.parametrize(
    ("name", "file", "data", "why"), FILE_CASES, ids=[c[0] for c in FILE_CASES]
)
def test_unreadable_file_is_exit_2_even_with_skip_bad(tmp_path, capsys, name, file, data, why):
    path = tmp_path / file
    path.write_bytes(data)
    for extra in ((), ("--skip-bad",)):
        assert _replay(path, *extra) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"agentrt: error: {path}") and re.search(why, err), err


@pytest.mark.parametrize(
    ("file", "data"),
    [
        ("t.jsonl", b"\xef\xbb\xbf" + b"\n".join([M0, M1, M2]) + b"\n"),
        ("t.csv", b"\xef\xbb\xbf" + b"\r\n".join([HEADER, _bg(), _bg("3.0")]) + b"\r\n"),
    ],
    ids=["jsonl", "csv"],
)
def test_utf8_byte_order_mark_is_read_as_utf8(tmp_path, file, data):
    path = tmp_path / file
    path.write_bytes(data)
    out = tmp_path / "r.json"
    assert _replay(path, "--json", str(out)) == 0
    result = orjson.loads(out.read_bytes())["lru"]
    _accounted(result)
    assert result["completed"] == result["read"] > 1 and result["skipped"] == 0


def test_every_prompt_too_long_fails_with_the_reason_and_exit_1(tmp_path, capsys):
    path = _write(tmp_path, "t.jsonl", [_mc(0, 3000), _mc(1, 5000)])
    out = tmp_path / "r.json"
    assert _replay(path, "--kv-cache-tokens", "2048", "--json", str(out)) == 1
    captured = capsys.readouterr()
    why = "prompt longer than the engine serves (at most 2,047 prompt tokens"
    assert "no request completed under lru" in captured.err and why in captured.err
    assert f"failed (lru): 2 x {why}" in captured.out
    result = orjson.loads(out.read_bytes())["lru"]
    _accounted(result)
    assert result["failed"] == 2 and list(result["failures"]) == [
        why + ": model context / KV capacity 2,048 tokens)"
    ]


def test_partial_failure_is_counted_and_exit_0(tmp_path, capsys):
    path = _write(tmp_path, "t.jsonl", [_mc(0), _mc(1, 5000), _mc(2)])
    out = tmp_path / "r.json"
    assert _replay(path, "--kv-cache-tokens", "2048", "--json", str(out)) == 0
    result = orjson.loads(out.read_bytes())["lru"]
    _accounted(result)
    assert (result["completed"], result["failed"], result["skipped"]) == (2, 1, 0)


def test_every_line_skipped_is_exit_1(tmp_path, capsys):
    path = _write(tmp_path, "t.jsonl", [_mc(0, input_length="1"), _mc(1, input_length="2")])
    out = tmp_path / "r.json"
    assert _replay(path, "--skip-bad", "--json", str(out)) == 1
    err = capsys.readouterr().err
    assert "no request completed under lru (2 lines read: 2 skipped)" in err
    _accounted(orjson.loads(out.read_bytes())["lru"])


def test_huge_prompt_fails_without_building_it(tmp_path):
    huge = _ours("x", prompt_len=10**12, prompt_token_ids=None, hash_ids=[7], block_size=10**12)
    path = _write(tmp_path, "t.jsonl", [_ours("a"), huge])
    out = tmp_path / "r.json"
    assert _replay(path, "--json", str(out)) == 0
    result = orjson.loads(out.read_bytes())["lru"]
    _accounted(result)
    assert result["completed"] == 1 and result["failed"] == 1


def test_output_len_0_and_timestamps_out_of_order_replay(tmp_path):
    # output_len 0 (a prefill-only call) runs with one generated token; rows need not be
    # in time order (the replay orders calls by arrival)
    path = _write(tmp_path, "t.jsonl", [_mc(20, out=0), _mc(0), _mc(10)])
    out = tmp_path / "r.json"
    assert _replay(path, "--json", str(out), "--max-requests", "3") == 0
    result = orjson.loads(out.read_bytes())["lru"]
    _accounted(result)
    assert result["completed"] == 3


def test_max_requests_accounts_for_the_lines_read(tmp_path):
    lines = [M0, b"oops", M1, M2, _mc(30)]
    trace = load_trace(_write(tmp_path, "t.jsonl", lines), skip_bad=True, max_requests=2)
    assert (trace.read, len(trace.records), len(trace.skipped)) == (3, 2, 1)


def test_engine_refusal_is_a_failure_with_its_reason(tmp_path, capsys):
    # token ids recorded with a bigger vocabulary than the replaying model's
    path = _write(tmp_path, "t.jsonl", [_ours("a"), _ours("b", prompt_token_ids=[5, 10**9, 7])])
    out = tmp_path / "r.json"
    assert _replay(path, "--json", str(out)) == 0
    result = orjson.loads(out.read_bytes())["lru"]
    _accounted(result)
    [(reason, count)] = result["failures"].items()
    assert count == 1 and reason.startswith("prompt token ids must be in [0, ")
    assert f"failed (lru): 1 x {reason}" in capsys.readouterr().out


def test_output_cut_at_the_context_limit_is_reported(tmp_path, capsys):
    path = _write(tmp_path, "t.jsonl", [_mc(0, 2000, out=100)])
    out = tmp_path / "r.json"
    assert _replay(path, "--kv-cache-tokens", "2048", "--json", str(out)) == 0
    result = orjson.loads(out.read_bytes())["lru"]
    _accounted(result)
    assert result["completed"] == 1 and result["truncated"] == 1
    assert "cut short (lru): 1 requests stopped at the engine's context limit" in (
        capsys.readouterr().out
    )


# -- any mix of good and bad lines --------------------------------------------------------

_junk = st.one_of(
    st.binary(min_size=1, max_size=30),
    st.text(max_size=30).map(str.encode),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=6,
    ).map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS) if _dumpable(v) else b"x"),
)


def _dumpable(value: object) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        return True
    except TypeError:
        return False


_ids = st.sampled_from("abcdef")
_ours_line = st.builds(
    lambda call_id, parents, change: _ours(call_id, parents, **change),
    _ids,
    st.lists(_ids, max_size=3),
    st.dictionaries(
        st.sampled_from(["step", "prompt_len", "arrival_s", "output_len", "version"]),
        st.integers(-2, 4) | st.floats(allow_nan=False) | st.text(max_size=2),
        max_size=1,
    ),
)
_mooncake_line = st.builds(
    lambda t, n, out: _mc(t, n, out), st.integers(-1, 5), st.integers(-1, 700), st.integers(-1, 5)
)
_csv_line = st.builds(
    lambda t, session, prompt: _bg(t, session, prompt=prompt),
    st.sampled_from(["0.0", "1.5", "-1", "nan", "x", "3"]),
    st.sampled_from(["", "7", "8"]),
    st.sampled_from(["10", "0", "1.5", "", "-3"]),
)


@pytest.mark.parametrize(
    ("head", "good"),
    [(A, _ours_line), (M0, _mooncake_line), (HEADER, _csv_line)],
    ids=["ours", "mooncake", "burstgpt"],
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_mix_of_lines_is_accounted_for(tmp_path, head, good, data):
    first = data.draw((good | _junk).filter(lambda line: line.strip()))
    lines = [head, first, *data.draw(st.lists(good | _junk | st.just(b""), max_size=12))]
    path = _write(tmp_path, "t.csv" if head == HEADER else "t.jsonl", lines)
    trace = load_trace(path, skip_bad=True)
    assert len(trace.records) + len(trace.skipped) == trace.read
    kept = [r.call_id for r in trace.records]
    assert len(set(kept)) == len(kept)
    done: set[str] = set()
    for record in _parents_first(trace.records):  # every kept parent is kept, no cycle
        assert set(record.parents) <= done
        done.add(record.call_id)
    try:
        strict = load_trace(path)
    except TraceFormatError as exc:
        line = int(re.match(rf"{re.escape(str(path))}:(\d+): ", str(exc)).group(1))
        assert line in {b.line for b in trace.skipped}
    else:
        assert not trace.skipped and strict.records == trace.records


def _parents_first(records: list) -> list:
    ids = {r.call_id for r in records}
    order, placed = [], set()
    while len(order) < len(records):
        ready = [r for r in records if r.call_id not in placed and set(r.parents) <= placed]
        assert ready or not ids, "a dependency cycle among the kept records"
        order += ready
        placed |= {r.call_id for r in ready}
    return order


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(_ours_line | _mooncake_line | _csv_line | _junk | st.just(HEADER), max_size=8)
)
def test_any_file_reads_or_says_why(tmp_path, lines):
    """Whatever the bytes, reading either accounts for every line or raises
    `TraceFormatError` naming the file: never another exception."""
    path = _write(tmp_path, "t.jsonl", lines)
    for skip_bad in (False, True):
        try:
            trace = load_trace(path, skip_bad=skip_bad)
        except TraceFormatError as exc:
            assert str(exc).startswith(f"{path}:")
        else:
            assert len(trace.records) + len(trace.skipped) == trace.read > 0
