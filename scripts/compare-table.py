#!/usr/bin/env python3
"""Prints the comparison table of `make demo`: size, PPL and KL-divergence statistics of quantized
models against their base, from `smelt perplexity --json` outputs.

    python3 scripts/compare-table.py BASE.json:BASE.gguf Q.json:Q.gguf ...

The first argument is the base model's perplexity result, the others KL-divergence results.
"""
import json, os, sys

rows = []
for i, arg in enumerate(sys.argv[1:]):
    path, gguf = arg.split(":", 1)
    d = json.load(open(path))
    size = os.path.getsize(gguf) / 2**20
    name = os.path.basename(gguf)
    if i == 0:
        rows.append((name, f"{size:8.1f}", f"{d['perplexity']:.4f} ± {d['uncertainty']:.4f}", "-", "-", "-", "-"))
    else:
        rows.append((name, f"{size:8.1f}", f"{d['pplQ']['value']:.4f} ± {d['pplQ']['uncertainty']:.4f}",
                     f"{d['pplRatio']['value']:.4f}", f"{d['kld']['value']:.6f} ± {d['kld']['uncertainty']:.6f}",
                     f"{100 * d['sameTop']['value']:.3f} %", f"{100 * d['rmsDeltaP']['value']:.3f} %"))
head = ("model", "MiB", "PPL", "PPL(Q)/PPL(base)", "mean KLD", "same top p", "RMS Δp")
w = [max(len(str(r[k])) for r in rows + [head]) for k in range(len(head))]
line = lambda r: "| " + " | ".join(str(c).ljust(w[k]) for k, c in enumerate(r)) + " |"
print(line(head)); print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for r in rows: print(line(r))
