"""What `bench engine` prints: its result (run_engine_bench's dict, with "peer" when
`--peer` ran) as two tables, and a one-line note when the peer could not run."""

from __future__ import annotations

from agentrt.report import format_table


def _x(ratio: float) -> str:
    return f"{ratio:.2f}x"


def throughput_table(result: dict) -> str:
    """Cases: HF, agentrt and (with a peer) vLLM tokens/s, and agentrt's speed ratios."""
    peer = _peer(result)
    header = ["case", "HF tok/s", "agentrt tok/s"]
    header += ["vLLM tok/s", "agentrt/HF", "agentrt/vLLM"] if peer else ["agentrt/HF"]
    theirs = {c["name"]: c["vllm_tok_s"] for c in peer["vllm"]["cases"]} if peer else {}
    rows = []
    for c in result["cases"]:
        row = [c["name"], c["hf_tok_s"], c["agentrt_tok_s"]]
        if peer:
            row += [theirs[c["name"]], _x(c["ratio"]), _x(peer["ratios"]["cases"][c["name"]])]
        else:
            row.append(_x(c["ratio"]))
        rows.append(row)
    title = f"Engine vs HF generate ({result['model']}, {result['device']}, {result['dtype']}"
    title += ", batch-invariant)" if result["batch_invariant"] else ")"
    return format_table(title, header, rows)


def roofline_table(result: dict) -> str:
    """TTFT, decode steps, bandwidth and roofline; with a peer, vLLM's figures beside ours
    where it measured them (the bound is the machine's, so vLLM's batch-1 fraction is the
    same bound over its own step)."""
    peer = _peer(result)
    b1, b16 = result["roofline"]
    bw = result["bandwidth"]
    threads = bw["threads"]

    def theirs(key: str) -> float | str:
        return peer["vllm"][key] if peer else ""

    def ratio(key: str) -> str:
        return _x(peer["ratios"][key]) if peer else ""

    vllm_b1_fraction = b1["bound_ms"] / peer["vllm"]["decode_step_ms"] if peer else ""
    kv_mb = b16["kv_bytes_read"] / 1e6
    rows: list[tuple] = [
        ("TTFT cold, 2,000-token prefix (ms)", result["ttft_cold_ms"], theirs("ttft_cold_ms"),
         ratio("ttft_cold")),
        ("TTFT cached prefix (ms)", result["ttft_cached_ms"], theirs("ttft_cached_ms"),
         ratio("ttft_cached")),
        ("cached / cold", result["ttft_cached_over_cold"], theirs("ttft_cached_over_cold"), ""),
        ("decode step, batch 1 (ms)", b1["step_ms"], theirs("decode_step_ms"),
         ratio("decode_step")),
        ("decode step, batch 16 (ms)", b16["step_ms"], "", ""),
        ("weights read per step (MB)", result["weight_bytes"] / 1e6, "", ""),
        (f"read bandwidth, torch sum, {threads} threads (GB/s)", bw["read_gbs"], "", ""),
    ]  # fmt: skip
    if bw["read_numpy_gbs"] is not None:
        label = f"  cross-check: numpy max, {threads} threads (GB/s)"
        rows.append((label, bw["read_numpy_gbs"], "", ""))
    rows += [
        ("copy traffic, read + written (GB/s)", bw["copy_traffic_gbs"], "", ""),
        ("read bandwidth between the batch-1 steps (GB/s)", b1["read_gbs"], "", ""),
        ("read bandwidth between the batch-16 steps (GB/s)", b16["read_gbs"], "", ""),
        ("bandwidth-bound step, batch 1 (ms)", b1["bound_ms"], "", ""),
        (f"bandwidth-bound step, batch 16, +{kv_mb:.0f} MB KV (ms)", b16["bound_ms"], "", ""),
        ("roofline fraction, batch 1", b1["fraction"], vllm_b1_fraction, ""),
        ("roofline fraction, batch 16", b16["fraction"], "", ""),
    ]
    title = "Prefix cache, decode steps and roofline"
    if not peer:
        return format_table(title, ["metric", "value"], [r[:2] for r in rows])
    return format_table(title, ["metric", "agentrt", "vLLM", "agentrt/vLLM"], rows)


def peer_note(result: dict) -> str | None:
    """The one line saying why the peer has no figures (None: it ran, or none asked)."""
    peer = result.get("peer")
    if peer is None or "error" not in peer:
        return None
    return f"peer vllm: not compared: {peer['error']}"


def engine_report(result: dict) -> str:
    """Both tables, then the peer's note if it could not run."""
    parts = [throughput_table(result), roofline_table(result)]
    note = peer_note(result)
    if note:
        parts.append(note)
    return "\n".join(parts)


def _peer(result: dict) -> dict | None:
    peer = result.get("peer")
    return peer if peer is not None and "error" not in peer else None
