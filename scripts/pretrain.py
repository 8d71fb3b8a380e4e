#!/usr/bin/python3
"""Pretrains the shipped mini-BERT (public/models/mini-bert/) with masked language modelling.

    node scripts/pretrain-vocab.mjs                  # vocabulary + tokenized corpus (.pretrain/)
    nice -n 19 /usr/bin/python3 scripts/pretrain.py  # pretrain; resumes from .pretrain/state.pt
    nice -n 19 /usr/bin/python3 scripts/pretrain.py --extend 10   # a further 10-minute phase
    nice -n 19 /usr/bin/python3 scripts/pretrain.py --total-steps 2700   # resume, re-planning the phase
    nice -n 19 /usr/bin/python3 scripts/pretrain.py --extend 12 --task-adaptive 0.5 --lr 5e-4
                                                     # a phase with half of every batch from the
                                                     # sentiment task's train sentences (TAPT)
    /usr/bin/python3 scripts/pretrain.py --downstream   # sentiment dev accuracy, pretrained vs random
    python3 scripts/pretrain.py --device cuda --extend 8 --batch 512   # a phase on a GPU machine
    /usr/bin/python3 scripts/pretrain-card.py          # the model card's tables from the logs

State, tokenized data and downstream results live in .pretrain/ (not committed). An interrupted
run continues from .pretrain/state.pt (saved every minute) when started again; --fresh starts over.

`npm run pretrain` runs the first two. Needs only torch (1.13 on the CPU here; 2.x with --device cuda
on a GPU machine) and numpy: BERT and the safetensors I/O are written out here, in Hugging Face's
BertForMaskedLM layout and names, so the project's importer (src/io/hf.ts) loads the result like any
hub checkpoint.

Recipe (BERT, Devlin et al. 2019, §3.1 and appendix A.2, shortened): 15 % of the real tokens are
prediction targets; of those 80 % become [MASK], 10 % a random piece, 10 % stay; loss = mean
cross-entropy over the targets only. AdamW (β 0.9/0.999, ε 1e-6, weight decay 0.01 except biases
and LayerNorms), linear warm-up then linear decay to 0, global-norm clipping at 1, dropout 0.1.
The run length is set from the measured seconds per step so it fits a wall-time budget; the step
count is stored with the state, so a resumed run follows the same schedule.
"""
import argparse
import csv
import json
import math
import os
import struct
import sys
import time
from typing import Dict, List, Tuple

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
MODEL_DIR = os.path.join(ROOT, "public", "models", "mini-bert")
WORK_DIR = os.path.join(ROOT, ".pretrain")
STATE_PATH = os.path.join(WORK_DIR, "state.pt")
LOSS_CSV = os.path.join(MODEL_DIR, "mlm_loss.csv")

SHAPE = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512,
             max_position_embeddings=64, type_vocab_size=2, layer_norm_eps=1e-12)
SPECIAL_IDS = 5  # [PAD] [UNK] [CLS] [SEP] [MASK] are ids 0..4 (scripts/pretrain-vocab.mjs)
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(SPECIAL_IDS)
IGNORE = -100
CURVE_EVAL_ROWS = 256


# ------------------------------------------------------------------------------------------------
# Model: Hugging Face BertForMaskedLM (post-LN), module names = HF parameter names

def gelu(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


class Namespace(nn.Module):
    """An empty module, so that attribute paths spell HF's names (bert.encoder.layer.0...)."""


class Embeddings(nn.Module):
    def __init__(self, c: dict, vocab: int):
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, c["hidden_size"])
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], c["hidden_size"])
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], c["hidden_size"])
        self.LayerNorm = nn.LayerNorm(c["hidden_size"], eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["dropout"])

    def forward(self, ids: torch.Tensor, types: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word_embeddings(ids) + self.position_embeddings(positions)[None] + self.token_type_embeddings(types)
        return self.dropout(self.LayerNorm(x))


class Adapter(nn.Module):
    """Bottleneck adapter A(h) = h + W_up·gelu(W_down·h + b_down) + b_up (REFERENCE.md), near-identity init."""

    def __init__(self, d: int, m: int, gen: torch.Generator):
        super().__init__()
        self.down, self.up = nn.Linear(d, m), nn.Linear(m, d)
        for lin in (self.down, self.up):
            with torch.no_grad():
                lin.weight.copy_(torch.fmod(torch.randn(lin.weight.shape, generator=gen), 2) * 1e-3)
                lin.bias.zero_()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(gelu(self.down(h)))


class Layer(nn.Module):
    def __init__(self, c: dict):
        super().__init__()
        d, heads = c["hidden_size"], c["num_attention_heads"]
        self.heads = heads
        self.attention = Namespace()
        self.attention.self = Namespace()
        self.attention.self.query, self.attention.self.key, self.attention.self.value = (nn.Linear(d, d) for _ in range(3))
        self.attention.output = Namespace()
        self.attention.output.dense = nn.Linear(d, d)
        self.attention.output.LayerNorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.intermediate = Namespace()
        self.intermediate.dense = nn.Linear(d, c["intermediate_size"])
        self.output = Namespace()
        self.output.dense = nn.Linear(c["intermediate_size"], d)
        self.output.LayerNorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.dropout = nn.Dropout(c["dropout"])
        self.output.adapter = None  # Pfeiffer adapter (downstream comparison only)

    def forward(self, x: torch.Tensor, additive_mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        s = self.attention.self

        def split(h):  # (B, T, d) -> (B, heads, T, dh)
            return h.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(s.query(x)), split(s.key(x)), split(s.value(x))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // self.heads) + additive_mask, -1)
        context = (self.dropout(probs) @ v).transpose(1, 2).reshape(b, t, d)
        a = self.attention.output.LayerNorm(x + self.dropout(self.attention.output.dense(context)))
        ffn = self.dropout(self.output.dense(gelu(self.intermediate.dense(a))))
        if self.output.adapter is not None:
            ffn = self.output.adapter(ffn)
        return self.output.LayerNorm(a + ffn)


class MiniBert(nn.Module):
    """bert.* encoder + cls.predictions MLM head (decoder tied to the word embeddings) + an optional
    pooler/classifier for the downstream comparison."""

    def __init__(self, c: dict, vocab: int, num_labels: int = 0, nsp: bool = False):
        super().__init__()
        d = c["hidden_size"]
        self.bert = Namespace()
        self.bert.embeddings = Embeddings(c, vocab)
        self.bert.encoder = Namespace()
        self.bert.encoder.layer = nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.cls = Namespace()
        self.cls.predictions = Namespace()
        self.cls.predictions.transform = Namespace()
        self.cls.predictions.transform.dense = nn.Linear(d, d)
        self.cls.predictions.transform.LayerNorm = nn.LayerNorm(d, eps=c["layer_norm_eps"])
        self.cls.predictions.bias = nn.Parameter(torch.zeros(vocab))
        if num_labels or nsp:
            self.bert.pooler = Namespace()
            self.bert.pooler.dense = nn.Linear(d, d)
            self.dropout = nn.Dropout(c["dropout"])
        if num_labels:
            self.classifier = nn.Linear(d, num_labels)
        if nsp:  # BERT's next-sentence head on the pooled [CLS]: 0 = B follows A, 1 = B is random
            self.cls.seq_relationship = nn.Linear(d, 2)

    def init_weights(self, gen: torch.Generator) -> None:
        """HF BertPreTrainedModel._init_weights: N(0, 0.02) weights, zero biases, LayerNorm 1/0."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "LayerNorm.weight" in name:
                    p.fill_(1.0)
                elif name.endswith("bias") or "LayerNorm" in name:
                    p.zero_()
                elif ".adapter." not in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.02)

    def encode(self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.bert.embeddings(ids, types)
        # HF's extended mask: (1 − mask)·finfo.min added to the scores of padded keys
        additive = (1.0 - mask.to(x.dtype))[:, None, None, :] * torch.finfo(x.dtype).min
        for layer in self.bert.encoder.layer:
            x = layer(x, additive)
        return x

    def mlm_logits(self, hidden_rows: torch.Tensor) -> torch.Tensor:
        t = self.cls.predictions.transform
        h = t.LayerNorm(gelu(t.dense(hidden_rows)))
        return h @ self.bert.embeddings.word_embeddings.weight.T + self.cls.predictions.bias

    def mlm_loss(self, ids, mask, labels, types=None) -> torch.Tensor:
        """mean cross-entropy over the positions whose label is not IGNORE; the vocabulary
        projection runs on those rows only (15 % of the tokens)"""
        hidden = self.encode(ids, torch.zeros_like(ids) if types is None else types, mask)
        picked = labels != IGNORE
        return F.cross_entropy(self.mlm_logits(hidden[picked]), labels[picked])

    def pretraining_losses(self, ids, types, mask, labels, nsp_labels) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(MLM loss, NSP loss, NSP accuracy) from one encoder pass (BertForPreTraining)"""
        hidden = self.encode(ids, types, mask)
        picked = labels != IGNORE
        mlm = F.cross_entropy(self.mlm_logits(hidden[picked]), labels[picked])
        logits = self.cls.seq_relationship(torch.tanh(self.bert.pooler.dense(hidden[:, 0])))
        return mlm, F.cross_entropy(logits, nsp_labels), (logits.argmax(-1) == nsp_labels).float().mean()

    def classify(self, ids, mask) -> torch.Tensor:
        hidden = self.encode(ids, torch.zeros_like(ids), mask)
        pooled = torch.tanh(self.bert.pooler.dense(hidden[:, 0]))
        return self.classifier(self.dropout(pooled))


def make_config(dropout: float = 0.1) -> dict:
    return dict(SHAPE, dropout=dropout)


# ------------------------------------------------------------------------------------------------
# safetensors (format: REFERENCE.md) — F32 and I32 tensors

def write_safetensors(path: str, tensors: List[Tuple[str, np.ndarray]], metadata: Dict[str, str]) -> None:
    header: dict = {"__metadata__": metadata}
    blobs, offset = [], 0
    for name, array in tensors:
        dtype = "I32" if array.dtype.kind in "iu" else "F32"
        data = np.ascontiguousarray(array, dtype="<i4" if dtype == "I32" else "<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # keeps the data 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for data in blobs:
            f.write(data)
    os.replace(tmp, path)  # a reader never sees a half-written file


def read_safetensors(path: str) -> Dict[str, np.ndarray]:
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        dt = {"F32": "<f4", "I32": "<i4"}[info["dtype"]]
        out[name] = np.frombuffer(data[begin:end], dtype=dt).reshape(info["shape"])
    return out


def export_checkpoint(model: MiniBert, vocab_size: int, note: str) -> None:
    """config.json + model.safetensors (bert.* and cls.predictions.*, decoder tied so not stored)."""
    os.makedirs(MODEL_DIR, exist_ok=True)
    tensors = [(name, p.detach().cpu().numpy().astype(np.float32)) for name, p in model.state_dict().items()
               if name.startswith(("bert.embeddings", "bert.encoder", "bert.pooler", "cls.predictions", "cls.seq_relationship"))]
    nsp = any(name.startswith("cls.seq_relationship") for name, _ in tensors)
    write_safetensors(os.path.join(MODEL_DIR, "model.safetensors"), tensors, {"format": "pt", "note": note})
    config = {
        "architectures": ["BertForPreTraining" if nsp else "BertForMaskedLM"], "model_type": "bert", "vocab_size": vocab_size,
        "hidden_size": SHAPE["hidden_size"], "num_hidden_layers": SHAPE["num_hidden_layers"],
        "num_attention_heads": SHAPE["num_attention_heads"], "intermediate_size": SHAPE["intermediate_size"],
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": SHAPE["max_position_embeddings"], "type_vocab_size": SHAPE["type_vocab_size"],
        "initializer_range": 0.02, "layer_norm_eps": SHAPE["layer_norm_eps"], "pad_token_id": PAD_ID,
        "position_embedding_type": "absolute", "tie_word_embeddings": True,
    }
    with open(os.path.join(MODEL_DIR, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")


# ------------------------------------------------------------------------------------------------
# Data

def load_rows(name: str) -> torch.Tensor:
    raw = np.fromfile(os.path.join(WORK_DIR, name), dtype="<u2").astype(np.int64)
    return torch.from_numpy(raw.reshape(-1, SHAPE["max_position_embeddings"]))


def vocab_size() -> int:
    with open(os.path.join(MODEL_DIR, "vocab.txt"), encoding="utf-8") as f:
        return sum(1 for line in f if line.rstrip("\n"))


def mask_tokens(ids: torch.Tensor, vocab: int, gen: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking: 15 % of the real (non-special, non-pad) tokens are targets; 80 % of those
    become [MASK], 10 % a random ordinary piece, 10 % stay. Returns (inputs, labels)."""
    candidates = ids >= SPECIAL_IDS
    targets = (torch.rand(ids.shape, generator=gen) < 0.15) & candidates
    labels = torch.where(targets, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, generator=gen)
    random_ids = torch.randint(SPECIAL_IDS, vocab, ids.shape, generator=gen)
    inputs = torch.where(targets & (roll < 0.8), torch.full_like(ids, MASK_ID), ids)
    inputs = torch.where(targets & (roll >= 0.8) & (roll < 0.9), random_ids, inputs)
    return inputs, labels


def task_sentences() -> List[List[int]]:
    """Task-adaptive pretraining text (--task-adaptive): the built-in sentiment task's *train*
    sentences (never dev or test), unlabelled, as piece ids without [CLS]/[SEP]."""
    with open(os.path.join(WORK_DIR, "sentiment.json")) as f:
        task = json.load(f)
    width = task["seqLen"]
    assert width == SHAPE["max_position_embeddings"], (width, SHAPE)
    ids = torch.tensor(task["train"]["ids"], dtype=torch.long).view(-1, width)
    lengths = (ids != PAD_ID).sum(1).tolist()
    return [ids[i, 1:lengths[i] - 1].tolist() for i in range(len(ids))]


def task_rows(sentences: List[List[int]], seed: int) -> torch.Tensor:
    """The sentences shuffled with `seed` and packed like the corpus: whole sentences fill a row of
    [CLS] … [SEP] up to the row length, a longer one is cut."""
    width = SHAPE["max_position_embeddings"]
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed)).tolist()
    rows, row = [], []
    for i in order:
        piece = sentences[i][:width - 2]
        if row and len(row) + len(piece) > width - 2:
            rows.append(row)
            row = []
        row = row + piece
    if row:
        rows.append(row)
    out = torch.full((len(rows), width), PAD_ID, dtype=torch.long)
    for r, content in enumerate(rows):
        out[r, :len(content) + 2] = torch.tensor([CLS_ID] + content + [SEP_ID])
    return out


def nsp_pairs(ids: torch.Tensor, rows: torch.Tensor, gen: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT's next-sentence task on packed rows: each row's pieces are cut at a random point into
    A and B; half of the time B is replaced by as many pieces from a random other row (label 1).
    Returns ([CLS] A [SEP] B [SEP] padded to the row length, token types 0/1, labels)."""
    batch, width = ids.shape
    out = torch.full_like(ids, PAD_ID)
    types = torch.zeros_like(ids)
    labels = torch.zeros(batch, dtype=torch.long)
    lengths = (ids != PAD_ID).sum(1).tolist()
    coins = torch.rand(batch, generator=gen).tolist()
    for i in range(batch):
        content = ids[i, 1:lengths[i] - 1]  # without [CLS] and [SEP]
        n = len(content)
        lo, hi = max(1, n // 4), max(1, (3 * n) // 4)
        cut = int(torch.randint(lo, hi + 1, (1,), generator=gen)) if n >= 2 else n
        a, b = content[:cut], content[cut:]
        if coins[i] < 0.5 and n >= 2:
            j = int(torch.randint(len(rows), (1,), generator=gen))
            other = rows[j, 1:int((rows[j] != PAD_ID).sum()) - 1]
            start = int(torch.randint(max(1, len(other) - len(b) + 1), (1,), generator=gen))
            b = other[start:start + len(b)]
            labels[i] = 1
        b = b[:width - 3 - len(a)]
        seq = torch.cat([torch.tensor([CLS_ID]), a, torch.tensor([SEP_ID]), b, torch.tensor([SEP_ID])])
        out[i, :len(seq)] = seq
        types[i, len(a) + 2:len(seq)] = 1
    return out, types, labels


@torch.no_grad()
def evaluate_mlm(model: MiniBert, rows: torch.Tensor, vocab: int, seed: int = 1234, batch: int = 256) -> float:
    """held-out MLM loss with a fixed masking (same targets every time), token-weighted mean"""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    for start in range(0, len(rows), batch):
        ids = rows[start:start + batch]
        inputs, labels = mask_tokens(ids, vocab, gen)
        n = int((labels != IGNORE).sum())
        if n:
            total += float(model.mlm_loss(inputs.to(device), (ids != PAD_ID).long().to(device), labels.to(device))) * n
            count += n
    model.train()
    return total / count


def write_mlm_check(model: MiniBert, eval_rows: torch.Tensor, vocab: int) -> float:
    """A fixed masked batch and this model's loss on it (dropout off, float64 arithmetic on the
    float32 weights as stored), for tests/gpu/pretrained.test.ts to compare our engine against."""
    ids = eval_rows[:8]
    inputs, labels = mask_tokens(ids, vocab, torch.Generator().manual_seed(99))
    mask = (ids != PAD_ID).long()
    reference = MiniBert(make_config(0.0), vocab, nsp=hasattr(model.cls, "seq_relationship")).double()
    reference.load_state_dict({k: v.detach().cpu().double() for k, v in model.state_dict().items()})
    reference.eval()
    with torch.no_grad():
        loss = float(reference.mlm_loss(inputs, mask, labels))
    write_safetensors(os.path.join(MODEL_DIR, "mlm_check.safetensors"), [
        ("input_ids", inputs.numpy().astype(np.int32)),
        ("attention_mask", mask.numpy().astype(np.int32)),
        ("labels", labels.numpy().astype(np.int32)),
        ("loss", np.array([loss], dtype=np.float32)),
    ], {"what": "masked batch: labels -100 = not a target; loss = mean CE over targets, dropout off",
        "loss_f64": repr(loss)})
    return loss


# ------------------------------------------------------------------------------------------------
# Pretraining

def param_groups(model: nn.Module, weight_decay: float):
    decay = [p for n, p in model.named_parameters() if p.requires_grad and not (n.endswith("bias") or "LayerNorm" in n)]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and (n.endswith("bias") or "LayerNorm" in n)]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


def progress(step: int, total: int, loss: float, sec_per_step: float, extra: str = "") -> None:
    width = 30
    done = int(width * step / max(1, total))
    eta = (total - step) * sec_per_step
    sys.stderr.write(f"\r[{'#' * done}{'.' * (width - done)}] {step}/{total} loss {loss:.3f} "
                     f"{sec_per_step:.2f} s/step ETA {eta / 60:.1f} min {extra}   ")
    sys.stderr.flush()


def pretrain(args) -> None:
    torch.set_num_threads(args.threads)
    vocab = vocab_size()
    train_rows, eval_rows = load_rows("corpus-train.bin"), load_rows("corpus-eval.bin")
    device = torch.device(args.device)
    # the state is saved from whatever device trained it and loads onto any (optimizer moments
    # follow their parameters in optimizer.load_state_dict)
    saved = torch.load(STATE_PATH, map_location="cpu", weights_only=False) if os.path.exists(STATE_PATH) and not args.fresh else None
    # next-sentence prediction, once switched on (--nsp), stays on for the rest of the run
    nsp = args.nsp or bool(saved and saved["state"].get("nsp"))
    model = MiniBert(make_config(), vocab, nsp=nsp)
    model.init_weights(torch.Generator().manual_seed(args.seed))
    model.to(device)  # in place: the parameter objects below stay the same
    is_nsp = lambda name: name.startswith(("bert.pooler", "cls.seq_relationship"))
    base_params = [(n, p) for n, p in model.named_parameters() if not is_nsp(n)]
    nsp_params = [(n, p) for n, p in model.named_parameters() if is_nsp(n)]

    def groups(named):
        return [{"params": [p for n, p in named if not (n.endswith("bias") or "LayerNorm" in n)], "weight_decay": 0.01},
                {"params": [p for n, p in named if n.endswith("bias") or "LayerNorm" in n], "weight_decay": 0.0}]

    optimizer = torch.optim.AdamW(groups(base_params), lr=args.lr, betas=(0.9, 0.999), eps=1e-6)
    if nsp and not (saved and saved["state"].get("nsp")):
        nsp_groups_pending = True  # added after an MLM-only optimizer state is loaded
    else:
        nsp_groups_pending = False
        for g in groups(nsp_params) if nsp else []:
            optimizer.add_param_group(g)
    # everything that decides what comes next lives in `state`, saved every --save-every seconds
    state = {"step": 0, "total_steps": None, "epoch": 0, "position": 0, "elapsed": 0.0,
             "tokens": 0, "early_written": False, "log": []}
    data_gen, mask_gen = torch.Generator().manual_seed(args.seed + 1), torch.Generator().manual_seed(args.seed + 2)
    if saved:
        missing = model.load_state_dict(saved["model"], strict=not nsp_groups_pending)
        assert not missing.unexpected_keys and all(is_nsp(k) for k in missing.missing_keys), missing
        optimizer.load_state_dict(saved["optimizer"])
        data_gen.set_state(saved["data_gen"])
        mask_gen.set_state(saved["mask_gen"])
        state = saved["state"]
        if args.extend:
            # a further phase on the finished run: plan it from a freshly measured speed, warm the
            # learning rate up again from 0 and decay it to 0 over the new phase
            state.update(total_steps=None, phase_start=state["step"], phase_elapsed=state["elapsed"])
            args.minutes = args.extend
        elif args.total_steps:
            # re-plan the current phase (a shared machine slowed down, or the loss is still falling):
            # the learning rate's linear decay is stretched or shrunk to end at the new step
            if args.total_steps <= state["step"]:
                sys.exit(f"--total-steps {args.total_steps} must be beyond the saved step {state['step']}")
            state["total_steps"] = args.total_steps
        if nsp_groups_pending:
            print("next-sentence prediction from here on: a fresh pooler and NSP head join the optimizer", file=sys.stderr)
        print(f"resuming from {STATE_PATH}: step {state['step']}/{state['total_steps']}, "
              f"{state['elapsed'] / 60:.1f} min trained", file=sys.stderr)
    if nsp_groups_pending:
        for g in groups(nsp_params):
            optimizer.add_param_group(g)
    state["nsp"] = nsp
    # task-adaptive pretraining, once switched on (--task-adaptive F), stays on: a fraction F of
    # every batch is packed rows of the sentiment task's train sentences, re-shuffled each pass
    if args.task_adaptive:
        if not args.extend:
            sys.exit("--task-adaptive starts a new phase: give it with --extend MINUTES")
        state["task_adaptive"] = args.task_adaptive
        state.setdefault("task_epoch", 0)
        state.setdefault("task_position", 0)
        state.setdefault("task_tokens", 0)
    task_fraction = state.get("task_adaptive", 0.0)
    task_batch = int(round(args.batch * task_fraction))
    # read once; every pass over it re-shuffles and re-packs
    sentences = task_sentences() if task_batch else []
    task_data = task_rows(sentences, args.seed + 2000 + state.get("task_epoch", 0)) if task_batch else None
    order = torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(args.seed + 1000 + state["epoch"]))

    def save_state() -> None:
        os.makedirs(WORK_DIR, exist_ok=True)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "data_gen": data_gen.get_state(),
                    "mask_gen": mask_gen.get_state(), "state": state}, STATE_PATH + ".tmp")
        os.replace(STATE_PATH + ".tmp", STATE_PATH)

    def write_csv() -> None:
        with open(LOSS_CSV, "w", newline="") as f:
            w = csv.writer(f)
            # train_loss and eval_loss are MLM losses; the NSP columns fill once --nsp is on
            w.writerow(["step", "tokens", "elapsed_s", "lr", "train_loss", "eval_loss", "train_nsp_loss", "train_nsp_accuracy"])
            w.writerows(state["log"])

    model.train()
    window, window_loss, window_nsp, window_nsp_acc = 0, 0.0, 0.0, 0.0
    last_save = time.time()
    seg_start, seg_elapsed0 = time.time(), state["elapsed"]
    timing_steps = 20
    while state["total_steps"] is None or state["step"] < state["total_steps"]:
        phase_start = state.get("phase_start", 0)
        if state["total_steps"] is None:  # timing steps: a small constant learning rate
            lr = args.lr * 0.01
        else:
            phase_steps = state["total_steps"] - phase_start
            lr = args.lr * lr_factor(state["step"] - phase_start, phase_steps, max(1, int(0.05 * phase_steps)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        if state["position"] + args.batch - task_batch > len(order):
            state["epoch"] += 1
            state["position"] = 0
            order = torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(args.seed + 1000 + state["epoch"]))
        ids = train_rows[order[state["position"]:state["position"] + args.batch - task_batch]]
        state["position"] += args.batch - task_batch
        if task_batch:
            if state["task_position"] + task_batch > len(task_data):
                state["task_epoch"] += 1
                state["task_position"] = 0
                task_data = task_rows(sentences, args.seed + 2000 + state["task_epoch"])
            task_ids = task_data[state["task_position"]:state["task_position"] + task_batch]
            state["task_position"] += task_batch
            state["task_tokens"] += int((task_ids != PAD_ID).sum())
            ids = torch.cat([ids, task_ids])
        if nsp:
            pairs, types, nsp_labels = nsp_pairs(ids[:args.batch - task_batch], train_rows, data_gen)
            if task_batch:  # a task row's random second segment comes from another task row
                task_pairs = nsp_pairs(ids[args.batch - task_batch:], task_data, data_gen)
                pairs, types, nsp_labels = (torch.cat([a, b]) for a, b in zip((pairs, types, nsp_labels), task_pairs))
            inputs, labels = mask_tokens(pairs, vocab, mask_gen)  # data and masks are drawn on the CPU generators
            loss, nsp_loss, nsp_acc = model.pretraining_losses(*(t.to(device) for t in (inputs, types, (pairs != PAD_ID).long(), labels, nsp_labels)))
            total_loss = loss + nsp_loss
            window_nsp += float(nsp_loss)
            window_nsp_acc += float(nsp_acc)
        else:
            inputs, labels = mask_tokens(ids, vocab, mask_gen)
            total_loss = loss = model.mlm_loss(*(t.to(device) for t in (inputs, (ids != PAD_ID).long(), labels)))
        optimizer.zero_grad(set_to_none=True)
        total_loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        state["step"] += 1
        state["tokens"] += int((ids != PAD_ID).sum())
        state["elapsed"] = seg_elapsed0 + (time.time() - seg_start)
        window += 1
        window_loss += float(loss)
        phase_start = state.get("phase_start", 0)
        sec_per_step = (state["elapsed"] - state.get("phase_elapsed", 0.0)) / (state["step"] - phase_start)

        if state["total_steps"] is None and state["step"] - phase_start >= timing_steps:
            # plan the run from the measured speed; the 20 timing steps count toward it, and
            # 7 % of the budget is left for the curve's evaluations
            state["total_steps"] = max(state["step"] + 1, phase_start + int(args.minutes * 60 * 0.93 / sec_per_step))
            print(f"\n{sec_per_step:.3f} s/step measured: planning {state['total_steps']} steps "
                  f"({args.minutes} min)", file=sys.stderr)
        total = state["total_steps"] or phase_start + timing_steps
        eval_every = max(args.log_every, total // 8)
        done = state["step"] >= total and state["total_steps"] is not None
        if state["step"] % args.log_every == 0 or done:
            # the curve's held-out loss uses the first CURVE_EVAL_ROWS held-out rows (an evaluation
            # costs about a third of a training step per row); the final loss uses all of them
            due = state["total_steps"] is not None and (state["step"] % eval_every < args.log_every or done)
            eval_loss = evaluate_mlm(model, eval_rows[:CURVE_EVAL_ROWS], vocab) if due else ""
            state["log"].append([state["step"], state["tokens"], round(state["elapsed"], 1),
                                 f"{optimizer.param_groups[0]['lr']:.3g}", round(window_loss / window, 4),
                                 round(eval_loss, 4) if eval_loss != "" else ""]
                                + ([round(window_nsp / window, 4), round(window_nsp_acc / window, 4)] if nsp else []))
            write_csv()
            window, window_loss, window_nsp, window_nsp_acc = 0, 0.0, 0.0, 0.0
        progress(state["step"], total, float(loss), sec_per_step, f"epoch {state['epoch']}" + (f" nsp {float(nsp_loss):.3f}" if nsp else ""))
        if not state["early_written"] and state["elapsed"] >= args.early_after:
            export_checkpoint(model, vocab, f"early checkpoint, step {state['step']}")
            state["early_written"] = True
            print(f"\nearly checkpoint written to {MODEL_DIR} (step {state['step']})", file=sys.stderr)
        if time.time() - last_save >= args.save_every or done:
            save_state()
            last_save = time.time()

    final_eval = evaluate_mlm(model, eval_rows, vocab)
    export_checkpoint(model, vocab, f"final, step {state['step']}")
    check_loss = write_mlm_check(model, eval_rows, vocab)
    summary = {"steps": state["step"], "tokens": state["tokens"], "elapsed_s": round(state["elapsed"], 1),
               "epochs": round(state["tokens"] / max(1, int((train_rows != PAD_ID).sum())), 3),
               "final_eval_loss": round(final_eval, 4), "mlm_check_loss": check_loss,
               "params": sum(p.numel() for n, p in model.state_dict().items() if n.startswith(("bert.", "cls."))),
               "batch": args.batch, "lr": args.lr, "threads": args.threads, "device": args.device}
    if task_batch:
        summary.update(task_adaptive=task_fraction, task_tokens=state["task_tokens"], task_passes=state["task_epoch"])
    with open(os.path.join(WORK_DIR, "pretrain-summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print("\n" + json.dumps(summary, indent=2))


# ------------------------------------------------------------------------------------------------
# Downstream comparison: sentiment dev accuracy, pretrained vs random init, three methods

def downstream(args) -> None:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    with open(os.path.join(WORK_DIR, "sentiment.json")) as f:
        task = json.load(f)
    seq = task["seqLen"]

    def tensors(split):
        ids = torch.tensor(split["ids"], dtype=torch.long).view(-1, seq)
        return ids.to(device), (ids != PAD_ID).long().to(device), torch.tensor(split["labels"]).to(device)

    train, dev = tensors(task["train"]), tensors(task["dev"])
    if args.limit:  # smoke test of the code path on a few examples
        train = tuple(t[:args.limit] for t in train)
        dev = tuple(t[:args.limit] for t in dev)
    vocab = vocab_size()
    pretrained = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(os.path.join(MODEL_DIR, "model.safetensors")).items()}
    lrs = {"head-only": 1e-3, "pfeiffer": 1e-3, "full": 3e-4}
    for item in args.lr_override:  # e.g. full=1e-4
        method, _, value = item.partition("=")
        if method not in lrs or not value:
            sys.exit(f"--ft-lr expects METHOD=VALUE with METHOD one of {', '.join(lrs)}; got {item!r}")
        lrs[method] = float(value)
    methods = {m: lr for m, lr in lrs.items() if m in args.methods}
    pretrained_pooler = "bert.pooler.dense.weight" in pretrained
    results = {}
    for seed in args.seeds:
        for init in args.inits:
            for method, lr in methods.items():
                torch.manual_seed(seed)
                gen = torch.Generator().manual_seed(seed)
                model = MiniBert(make_config(), vocab, num_labels=len(task["classes"]))
                model.init_weights(gen)  # random init of everything; pooler/classifier in both cases
                if init == "pretrained":
                    # the pooler comes from the checkpoint when it has one (NSP-pretrained); its NSP head is not used
                    missing = model.load_state_dict({k: v for k, v in pretrained.items() if not k.startswith("cls.seq_relationship")}, strict=False)
                    assert not missing.unexpected_keys, missing.unexpected_keys
                if method == "pfeiffer":
                    m = SHAPE["hidden_size"] // 16
                    for layer in model.bert.encoder.layer:
                        layer.output.adapter = Adapter(SHAPE["hidden_size"], m, gen)
                model.to(device)
                for name, p in model.named_parameters():
                    if method == "full":
                        p.requires_grad = not name.startswith("cls.")
                    elif method == "head-only":
                        p.requires_grad = name.startswith(("bert.pooler", "classifier"))
                    else:  # Pfeiffer: adapters, LayerNorms, classifier (REFERENCE.md); the pooler trains only
                        # when the checkpoint has none (a fresh one), as in the playground (src/model/bert.ts) —
                        # in both columns, so that they train the same parameters
                        p.requires_grad = (".adapter." in name or ("LayerNorm" in name and not name.startswith("cls."))
                                           or name.startswith("classifier")
                                           or (name.startswith("bert.pooler") and not pretrained_pooler))
                optimizer = torch.optim.AdamW(param_groups(model, 0.01), lr=lr, eps=1e-6)
                steps_per_epoch = math.ceil(len(train[0]) / args.ft_batch)
                total = steps_per_epoch * args.epochs
                step = 0
                model.train()
                for epoch in range(args.epochs):
                    order = torch.randperm(len(train[0]), generator=gen).to(device)
                    for start in range(0, len(order), args.ft_batch):
                        idx = order[start:start + args.ft_batch]
                        for g in optimizer.param_groups:
                            g["lr"] = lr * lr_factor(step, total, max(1, total // 10))
                        # pad to this batch's longest text only: review sentences average ~17 pieces
                        width = int(train[1][idx].sum(1).max())
                        loss = F.cross_entropy(model.classify(train[0][idx, :width], train[1][idx, :width]), train[2][idx])
                        optimizer.zero_grad(set_to_none=True)
                        loss.backward()
                        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                        optimizer.step()
                        step += 1
                model.eval()
                with torch.no_grad():
                    accuracy = float((model.classify(dev[0], dev[1]).argmax(-1) == dev[2]).float().mean())
                results.setdefault(f"{method}/{init}", []).append(accuracy)
                print(f"seed {seed} {init:10s} {method:9s} lr {lr:g}: dev accuracy {accuracy:.4f}", file=sys.stderr)
    summary = {"task": "sentiment", "split_seed": task["seed"], "train": len(train[0]), "dev": len(dev[0]),
               "epochs": args.epochs, "batch": args.ft_batch, "lr": methods, "seeds": args.seeds,
               "dev_accuracy": {k: {"mean": round(float(np.mean(v)), 4), "runs": [round(a, 4) for a in v]} for k, v in results.items()}}
    methods_tag = "" if len(methods) == 3 and not args.lr_override else "-" + "-".join(f"{m}{'@' + format(lr, 'g') if args.lr_override else ''}" for m, lr in methods.items())
    with open(os.path.join(WORK_DIR, f"downstream-{'-'.join(args.inits)}{methods_tag}{'' if args.epochs == 3 else f'-ep{args.epochs}'}-seed{'-'.join(map(str, args.seeds))}.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--downstream", action="store_true", help="run the sentiment comparison instead of pretraining")
    ap.add_argument("--extend", type=float, default=0.0, metavar="MINUTES",
                    help="continue a finished run for a further phase of this many minutes (new warm-up and decay)")
    ap.add_argument("--total-steps", type=int, default=0, metavar="N",
                    help="resume with the current phase re-planned to end at step N (its lr decay follows)")
    ap.add_argument("--nsp", action="store_true",
                    help="add BERT's next-sentence prediction (pooler + cls.seq_relationship) from this phase on")
    ap.add_argument("--task-adaptive", type=float, default=0.0, metavar="FRACTION",
                    help="with --extend: task-adaptive pretraining (Gururangan et al. 2020), FRACTION of every batch "
                         "from the sentiment task's unlabelled train sentences, for the rest of the run")
    ap.add_argument("--fresh", action="store_true", help="ignore .pretrain/state.pt and start over")
    ap.add_argument("--minutes", type=float, default=25.0, help="wall-time budget of the whole run")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu",
                    help="torch device to train on, e.g. cuda (data, masking and its random streams stay on the CPU)")
    ap.add_argument("--log-every", type=int, default=25)
    ap.add_argument("--save-every", type=float, default=60.0, help="seconds between resumable states")
    ap.add_argument("--early-after", type=float, default=180.0, help="write a first checkpoint after this many seconds")
    ap.add_argument("--epochs", type=int, default=3, help="downstream: fine-tuning epochs")
    ap.add_argument("--ft-batch", type=int, default=32, help="downstream: batch size")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1], help="downstream: seeds")
    ap.add_argument("--inits", nargs="+", default=["pretrained", "random"], choices=["pretrained", "random"],
                    help="downstream: which initialisations to compare (each run writes .pretrain/downstream-<inits>-seed<seeds>.json)")
    ap.add_argument("--methods", nargs="+", default=["head-only", "pfeiffer", "full"], choices=["head-only", "pfeiffer", "full"],
                    help="downstream: which fine-tuning methods")
    ap.add_argument("--ft-lr", dest="lr_override", nargs="+", default=[], metavar="METHOD=LR",
                    help="downstream: learning rates other than head-only=1e-3 pfeiffer=1e-3 full=3e-4")
    ap.add_argument("--limit", type=int, default=0, help="downstream: use only this many examples (smoke test)")
    args = ap.parse_args()
    if args.downstream:
        downstream(args)
    else:
        pretrain(args)


if __name__ == "__main__":
    main()
