#!/usr/bin/python3
"""Prints the numeric sections of public/models/mini-bert/README.md (the model card) from what
scripts/pretrain-vocab.mjs and scripts/pretrain.py wrote: corpus sizes, the MLM loss curve (every
held-out evaluation in mlm_loss.csv) and the downstream comparison. Paste into the card.

    /usr/bin/python3 scripts/pretrain-card.py
"""
import csv
import glob
import json
import os

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
WORK = os.path.join(ROOT, ".pretrain")

stats = json.load(open(os.path.join(WORK, "corpus-stats.json")))
print("| source | documents | sentences | basic tokens | bert-base-uncased pieces |\n|---|---|---|---|---|")
for name, s in stats["sources"].items():
    print(f"| {name} | {s['documents']:,} | {s['sentences']:,} | {s['words']:,} | {s['fullVocabPieces']:,} |")

print("\n| step | tokens seen | wall time (min) | learning rate | train loss (last 10 steps) | held-out loss |\n|---|---|---|---|---|---|")
with open(os.path.join(ROOT, "public/models/mini-bert/mlm_loss.csv")) as f:
    for row in csv.DictReader(f):
        if row["eval_loss"]:
            print(f"| {row['step']} | {int(row['tokens']):,} | {float(row['elapsed_s']) / 60:.1f} | {float(row['lr']):.2g} | "
                  f"{row['train_loss']} | {row['eval_loss']} |")

runs = {}
for path in sorted(glob.glob(os.path.join(WORK, "downstream-*.json"))):
    d = json.load(open(path))
    for key, v in d["dev_accuracy"].items():
        for seed, acc in zip(d["seeds"], v["runs"]):
            runs.setdefault(key, {})[seed] = acc
print("\n| method | pretrained | random init | runs (seeds) |\n|---|---|---|---|")
for method in ("head-only", "pfeiffer", "full"):
    p, r = runs.get(f"{method}/pretrained", {}), runs.get(f"{method}/random", {})
    mean = lambda d: sum(d.values()) / len(d) if d else float("nan")
    detail = "; ".join(f"seed {s}: {p.get(s, float('nan')):.3f} vs {r.get(s, float('nan')):.3f}" for s in sorted(set(p) | set(r)))
    print(f"| {method} | {mean(p):.3f} | {mean(r):.3f} | {detail} |")
