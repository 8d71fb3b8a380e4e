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

runs = {}  # (method, lr, epochs) -> init -> seed -> accuracy; a later file overrides an earlier one
for path in sorted(glob.glob(os.path.join(WORK, "downstream-*.json")), key=os.path.getmtime):
    d = json.load(open(path))
    for key, v in d["dev_accuracy"].items():
        method, init = key.split("/")
        for seed, acc in zip(d["seeds"], v["runs"]):
            runs.setdefault((method, d["lr"][method], d["epochs"]), {}).setdefault(init, {})[seed] = acc


def cell(d: dict) -> str:
    if not d:
        return "–"
    values = [d[s] for s in sorted(d)]
    mean = sum(values) / len(values)
    return f"{mean:.3f} ({', '.join(f'{v:.3f}' for v in values)})"


print("\n| method | learning rate | epochs | pretrained: mean (seeds) | random init: mean (seeds) |\n|---|---|---|---|---|")
for method in ("head-only", "pfeiffer", "full"):
    for key in sorted(k for k in runs if k[0] == method):
        r = runs[key]
        print(f"| {method} | {key[1]:g} | {key[2]} | {cell(r.get('pretrained', {}))} | {cell(r.get('random', {}))} |")
