"""`--plot PATH.png`: latency CDFs (TTFT, E2E) and prefix hit rates per policy."""

from __future__ import annotations

from pathlib import Path

from agentrt.output_files import write_figure


def plot_replay(results: dict[str, dict], path: str | Path, title: str = "") -> Path:
    """Draw one figure: TTFT CDF, E2E CDF and device/host hit rates, one colour per
    policy. Needs per-call results (`ReplayOptions(per_call=True)`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_ttft, ax_e2e, ax_hit) = plt.subplots(1, 3, figsize=(15, 4.2))
    for policy, result in results.items():
        calls = result.get("calls", {}).values()
        for ax, key in ((ax_ttft, "ttft_s"), (ax_e2e, "e2e_s")):
            values = sorted(c[key] for c in calls if c[key] is not None and not c["failed"])
            if values:
                n = len(values)
                ax.step(values, [(i + 1) / n for i in range(n)], where="post", label=policy)
    for ax, name in ((ax_ttft, "TTFT"), (ax_e2e, "E2E latency")):
        ax.set_xscale("symlog", linthresh=1e-2)
        ax.set_xlabel(f"{name} (s)")
        ax.set_ylabel("fraction of requests")
        ax.set_title(f"{name} CDF")
        ax.grid(alpha=0.3)
        ax.legend()
    names = list(results)
    device = [results[p]["device_hit_rate"] for p in names]
    host = [results[p]["host_hit_rate"] for p in names]
    ax_hit.bar(names, device, label="device")
    ax_hit.bar(names, host, bottom=device, label="host (loaded)")
    ax_hit.set_ylim(0, 1)
    ax_hit.set_ylabel("prompt tokens served from cache")
    ax_hit.set_title("Prefix hit rate")
    ax_hit.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return write_figure(fig, path)
