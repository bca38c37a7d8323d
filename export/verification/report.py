"""Tables generated from bundles: what each recurrent layer became, per artifact."""

from __future__ import annotations

RECURRENT_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM", "BIDIRECTIONAL_SEQUENCE_LSTM",
                 "UNIDIRECTIONAL_SEQUENCE_RNN", "LSTM", "GRU", "RNN", "DynamicQuantizeLSTM")
FALLBACK_OPS = ("WHILE", "CALL_ONCE", "Loop", "Scan")


def compatibility_rows(manifest: dict) -> list[dict]:
    """One row per artifact: its recurrent ops, loops, Flex/custom ops, and the verdict."""
    rows = []
    graphs = {g["name"]: g for g in manifest["graphs"]}
    for a in manifest["artifacts"]:
        ops = a["ops"]
        flex = sorted(op for op in ops if op.startswith("Flex") or op in ("CUSTOM", "DELEGATE"))
        recurrent = graphs[a["graph"]]["recurrent"]
        rows.append({
            "model": manifest["model"], "graph": a["graph"], "format": a["format"],
            "precision": a["precision"],
            "recurrent_ops": {op: ops[op] for op in RECURRENT_OPS if op in ops},
            "fallbacks": {op: ops[op] for op in FALLBACK_OPS if op in ops},
            "flex": flex,
            "loop_reason": a.get("loop_reason"),
            "verdict": ("step graph, no loop" if recurrent == "step" and a["all_fused"] else
                        "unrolled, no loop" if recurrent == "unrolled" and a["all_fused"] else
                        "fused" if a["all_fused"] else
                        f"loop: {a['loop_reason']}" if a.get("loop_reason") else "NOT fused"),
        })
    return rows


def compatibility_markdown(manifests: list[dict]) -> str:
    lines = ["| model | graph | format | precision | recurrent ops | WHILE/Loop | Flex | result |",
             "|---|---|---|---|---|---|---|---|"]
    for manifest in manifests:
        for r in compatibility_rows(manifest):
            ops = ", ".join(f"{k}×{v}" for k, v in r["recurrent_ops"].items()) or "none"
            loops = ", ".join(f"{k}×{v}" for k, v in r["fallbacks"].items()) or "none"
            lines.append(f"| {r['model']} | {r['graph']} | {r['format']} | {r['precision']} | "
                         f"{ops} | {loops} | {', '.join(r['flex']) or 'none'} | {r['verdict']} |")
    return "\n".join(lines) + "\n"
