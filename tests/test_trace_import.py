"""Trace importers: real Mooncake traces, BurstGPT CSV, our own format, and bad lines."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from agentrt.trace import CallRecord, TraceFormatError, TraceReader, TraceRecorder, prompt_tokens

TRACES = Path(__file__).resolve().parents[2] / "shared" / "data" / "traces"
CONVERSATION = TRACES / "mooncake_conversation_trace.jsonl"

needs_traces = pytest.mark.skipif(not CONVERSATION.exists(), reason="shared traces not present")


@needs_traces
def test_whole_mooncake_conversation_trace_reads():
    records = list(TraceReader(CONVERSATION))
    assert len(records) == 12_031
    assert records[0].arrival_s == 0.0 and records[-1].arrival_s == pytest.approx(3536.999)
    assert sum(r.prompt_len for r in records) / len(records) == pytest.approx(12_035, rel=0.01)
    assert all(r.block_size == 512 for r in records[:100])


@needs_traces
def test_shared_hash_blocks_share_tokens():
    first, second = list(TraceReader(CONVERSATION))[:2]
    assert first.hash_ids[0] == second.hash_ids[0] and first.hash_ids[1] != second.hash_ids[1]
    a, b = prompt_tokens(first, 49152), prompt_tokens(second, 49152)
    assert len(a) == first.prompt_len and len(b) == second.prompt_len
    assert a[:512] == b[:512] and a[512:1024] != b[512:1024]
    small = prompt_tokens(first, 49152, scale=0.1)
    assert len(small) == round(first.prompt_len * 0.1)
    assert small[:51] == prompt_tokens(second, 49152, scale=0.1)[:51]


def _write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_malformed_mooncake_line_names_file_and_line(tmp_path):
    good = '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1, 2]}'
    path = _write(
        tmp_path,
        "t.jsonl",
        [good, good, '{"timestamp": 5, "input_length": 600, "output_length": 5', good],
    )
    with pytest.raises(TraceFormatError, match=r"t\.jsonl:3: not JSON"):
        list(TraceReader(path))
    reader = TraceReader(path, skip_bad=True)
    assert len(list(reader)) == 3 and reader.skipped == 1


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"timestamp": 0, "output_length": 5, "hash_ids": [1]}', "missing field 'input_length'"),
        (
            '{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [1]}',
            "expected 2",
        ),
        ('{"timestamp": 0, "input_length": 0, "output_length": 5, "hash_ids": []}', "prompt_len"),
    ],
)
def test_invalid_mooncake_records(tmp_path, line, why):
    good = '{"timestamp": 0, "input_length": 10, "output_length": 5, "hash_ids": [1]}'
    path = _write(tmp_path, "t.jsonl", [good, line])
    with pytest.raises(TraceFormatError, match=rf":2: .*{why}"):
        list(TraceReader(path, fmt="mooncake"))


def test_burstgpt_sessions_chain(tmp_path):
    header = (
        "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,"
        "Total tokens,Log Type"
    )
    path = _write(
        tmp_path,
        "burst.csv",
        [
            header,
            "0.0,7,2.0,ChatGPT,100,50,150,Conversation log",
            "1.0,,0.5,GPT-4,30,10,40,API log",
            "5.0,7,1.0,ChatGPT,180,20,200,Conversation log",
            "oops,7,1.0,ChatGPT,180,20,200,Conversation log",
        ],
    )
    with pytest.raises(TraceFormatError, match=r"burst\.csv:5:"):
        list(TraceReader(path))
    reader = TraceReader(path, skip_bad=True)
    first, lone, follow = list(reader)
    assert reader.skipped == 1
    assert follow.parents == [first.call_id] and follow.step == 1
    assert follow.think_time_s == pytest.approx(3.0)  # 5.0 - (0.0 + 2.0)
    assert lone.parents == [] and lone.agent_id == "GPT-4"


def test_own_format_round_trip(tmp_path):
    path = tmp_path / "calls.jsonl"
    records = [
        CallRecord(
            call_id=f"w/a/{i}",
            workflow_id="w",
            agent_id="w/a",
            step=i,
            parents=[f"w/a/{i - 1}"] if i else [],
            arrival_s=float(i),
            prompt_len=3,
            prompt_token_ids=[5, 6, 7],
            output_len=2,
        )
        for i in range(3)
    ]
    with TraceRecorder(path) as recorder:
        for r in records:
            recorder.write(r)
    assert list(TraceReader(path)) == records
    lines = path.read_bytes().splitlines()
    assert len(lines) == 3 and orjson.loads(lines[0])["version"] == 1


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        TraceReader(tmp_path / "none.jsonl")
    path = _write(tmp_path, "t.jsonl", ["{}"])
    with pytest.raises(ValueError, match="unknown trace format"):
        TraceReader(path, fmt="parquet")
