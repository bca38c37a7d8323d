"""Plots of a benchmark run: latency per backend, and size against metric drop."""

from __future__ import annotations

from pathlib import Path

COLUMNS = 4  # latency panels per row


def plot(results: dict, out: Path) -> list[Path]:
    """Writes ``latency.png`` and ``size_vs_drop.png`` into ``out``; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(results["models"])
    if not models:
        return []
    cols = min(COLUMNS, len(models))
    grid = -(-len(models) // cols)
    fig, axes = plt.subplots(grid, cols, figsize=(5 * cols, 3.6 * grid), squeeze=False)
    for ax in axes.flat[len(models):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, models, strict=False):  # unused panels are off
        rows = [r for r in results["models"][name]["rows"] if r["threads"] == 1 and "sample" in r]
        labels = [f"{r['backend']}\n{r['precision']}" for r in rows]
        ax.bar(labels, [r["sample"]["median_us"] for r in rows],
               yerr=[[0] * len(rows),
                     [r["sample"]["p90_us"] - r["sample"]["median_us"] for r in rows]],
               color=["#888" if r["backend"].startswith(("keras", "torch")) else "#2a7"
                      for r in rows])
        ax.set_yscale("log")
        ax.set_title(f"{name}: batch-1 sample, 1 thread\n(bar: median, whisker: p90)",
                     fontsize=9)
        ax.set_ylabel("µs")
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    latency = out / "latency.png"
    fig.savefig(latency, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in models:
        m = results["models"][name]
        rows = [r for r in m["rows"] if r["threads"] == 1 and r.get("size_bytes")]
        fp32 = {r["backend"]: r["size_bytes"] for r in rows if r["precision"] == "fp32"}
        keras = next((r["metrics"].get(m["task_metric"]) for r in m["rows"]
                      if r["backend"] == "keras" and r.get("metrics")), None)
        for r in rows:
            # a Keras metric of 0 (CER 0, say) has no relative change: not plotted
            if not keras or r["metric_drop"] is None or r["backend"] not in fp32:
                continue
            # metrics differ in unit (accuracy, CER, MSE, bits per character): the change
            # relative to Keras' own value puts them on one axis
            x, y = r["size_bytes"] / fp32[r["backend"]], 100 * r["metric_drop"] / abs(keras)
            ax.scatter(x, y, marker="o" if r["backend"] == "litert" else "s")
            if r["precision"] != "fp32":  # every fp32 artifact sits at (1, 0)
                ax.annotate(f"{name} {r['backend']} {r['precision']}", (x, y), fontsize=6,
                            xytext=(4, 4), textcoords="offset points")
    ax.annotate("all fp32 artifacts", (1, 0), fontsize=6, xytext=(-60, 8),
                textcoords="offset points")
    ax.set_xlabel("artifact size / fp32 size of the same format")
    ax.set_ylabel("task metric worse than Keras by, % of Keras' value\n(< 0: better)")
    ax.set_title("Size against accuracy kept", fontsize=9)
    fig.tight_layout()
    scatter = out / "size_vs_drop.png"
    fig.savefig(scatter, dpi=110)
    plt.close(fig)
    return [latency, scatter]
