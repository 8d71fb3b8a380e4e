#!/usr/bin/python3
"""Write a tiny BERT checkpoint in the exact Hugging Face file layout, without `transformers`.

    /usr/bin/python3 scripts/make-tiny-hf-checkpoint.py [out_dir]   (default tests/fixtures/tiny-hf)

Produces what `BertForPreTraining.save_pretrained` would for a 2-layer, hidden-8 model:
  config.json        HF BertConfig fields (model_type "bert", architectures ["BertForPreTraining"])
  model.safetensors  `bert.*` weights, the MLM/NSP heads (`cls.*`) and the `position_ids` buffer
                     (I64), written by hand below (no `safetensors` package here, see ENV.md)
  vocab.txt          30 WordPiece tokens, specials first
  reference.json     an independent float32 forward of this model in PyTorch (written from the
                     equations in REFERENCE.md, not from our TypeScript) on a padded batch of two:
                     last_hidden_state and pooler_output, for the model tests to compare against.

Deterministic (torch.manual_seed(0)); rerunning rewrites identical files.
"""
import json
import math
import os
import struct
import sys

import torch
import torch.nn.functional as F

HIDDEN, LAYERS, HEADS, INTERMEDIATE, MAX_POSITIONS, TYPE_VOCAB = 8, 2, 2, 16, 16, 2
EPS = 1e-12
VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "movie", "film", "was", "is", "good",
    "great", "bad", "terrible", "i", "it", "love", "hate", "not", "very", "plot", "acting", ".", "!",
    ",", "##s", "##ing", "##ly", "fun",
]


def write_safetensors(path, tensors, metadata):
    """safetensors layout (REFERENCE.md): u64 LE header length, JSON header padded with spaces to a
    multiple of 8, then the little-endian tensors back to back; I64 first, then F32, by name, as
    the reference serializer orders them (most-aligned dtype first)."""
    dtype_of = {torch.float32: ("F32", 4), torch.int64: ("I64", 8)}
    order = sorted(tensors, key=lambda n: (0 if tensors[n].dtype == torch.int64 else 1, n))
    header, blobs, offset = {"__metadata__": metadata}, [], 0
    for name in order:
        t = tensors[name].contiguous()
        dtype, size = dtype_of[t.dtype]
        data = t.numpy().astype("<i8" if dtype == "I64" else "<f4").tobytes()
        assert len(data) == t.numel() * size
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def make_weights():
    g = torch.Generator().manual_seed(0)

    def randn(*shape, std=0.3):
        return torch.randn(*shape, generator=g) * std

    def layer_norm(prefix, w):
        w[f"{prefix}.weight"] = 1 + randn(HIDDEN, std=0.1)
        w[f"{prefix}.bias"] = randn(HIDDEN, std=0.1)

    def linear(prefix, out_features, in_features, w):
        # PyTorch Linear layout: weight [out, in]; scale ~1/sqrt(in) keeps activations O(1)
        w[f"{prefix}.weight"] = randn(out_features, in_features, std=1 / math.sqrt(in_features))
        w[f"{prefix}.bias"] = randn(out_features, std=0.1)

    w = {}
    w["bert.embeddings.word_embeddings.weight"] = randn(len(VOCAB), HIDDEN, std=1.0)
    w["bert.embeddings.position_embeddings.weight"] = randn(MAX_POSITIONS, HIDDEN, std=0.5)
    w["bert.embeddings.token_type_embeddings.weight"] = randn(TYPE_VOCAB, HIDDEN, std=0.5)
    layer_norm("bert.embeddings.LayerNorm", w)
    for l in range(LAYERS):
        p = f"bert.encoder.layer.{l}"
        for proj in ("query", "key", "value"):
            linear(f"{p}.attention.self.{proj}", HIDDEN, HIDDEN, w)
        linear(f"{p}.attention.output.dense", HIDDEN, HIDDEN, w)
        layer_norm(f"{p}.attention.output.LayerNorm", w)
        linear(f"{p}.intermediate.dense", INTERMEDIATE, HIDDEN, w)
        linear(f"{p}.output.dense", HIDDEN, INTERMEDIATE, w)
        layer_norm(f"{p}.output.LayerNorm", w)
    linear("bert.pooler.dense", HIDDEN, HIDDEN, w)
    # pre-training heads, which a sequence classifier ignores; the MLM decoder weight is tied to
    # the word embeddings, so save_pretrained stores only its bias (as here)
    linear("cls.predictions.transform.dense", HIDDEN, HIDDEN, w)
    layer_norm("cls.predictions.transform.LayerNorm", w)
    w["cls.predictions.bias"] = torch.zeros(len(VOCAB))
    linear("cls.seq_relationship", 2, HIDDEN, w)
    w["bert.embeddings.position_ids"] = torch.arange(MAX_POSITIONS, dtype=torch.int64).unsqueeze(0)
    return w


def bert_forward(w, ids, token_types, mask):
    """Post-LN BERT encoder + pooler, REFERENCE.md "Base model", in float32."""
    lin = lambda x, p: x @ w[f"{p}.weight"].T + w[f"{p}.bias"]
    ln = lambda x, p: F.layer_norm(x, (HIDDEN,), w[f"{p}.weight"], w[f"{p}.bias"], EPS)
    batch, seq = ids.shape
    head_dim = HIDDEN // HEADS
    x = (w["bert.embeddings.word_embeddings.weight"][ids]
         + w["bert.embeddings.position_embeddings.weight"][torch.arange(seq)]
         + w["bert.embeddings.token_type_embeddings.weight"][token_types])
    x = ln(x, "bert.embeddings.LayerNorm")
    key_bias = (1.0 - mask.float())[:, None, None, :] * torch.finfo(torch.float32).min  # padded keys
    for l in range(LAYERS):
        p = f"bert.encoder.layer.{l}"
        split = lambda t: t.view(batch, seq, HEADS, head_dim).transpose(1, 2)
        q, k, v = (split(lin(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim) + key_bias
        context = (F.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(batch, seq, HIDDEN)
        a = ln(x + lin(context, f"{p}.attention.output.dense"), f"{p}.attention.output.LayerNorm")
        h = F.gelu(lin(a, f"{p}.intermediate.dense"))  # exact erf GELU
        x = ln(a + lin(h, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    pooled = torch.tanh(lin(x[:, 0], "bert.pooler.dense"))
    return x, pooled


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tiny-hf")
    os.makedirs(out, exist_ok=True)
    config = {
        "architectures": ["BertForPreTraining"],
        "model_type": "bert",
        "vocab_size": len(VOCAB),
        "hidden_size": HIDDEN,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "intermediate_size": INTERMEDIATE,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": MAX_POSITIONS,
        "type_vocab_size": TYPE_VOCAB,
        "initializer_range": 0.02,
        "layer_norm_eps": EPS,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "transformers_version": "4.40.0",
    }
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    weights = make_weights()
    write_safetensors(os.path.join(out, "model.safetensors"), weights, {"format": "pt"})

    tok = {t: i for i, t in enumerate(VOCAB)}
    sentences = [["[CLS]", "i", "love", "the", "movie", "[SEP]"], ["[CLS]", "bad", "film", "[SEP]", "[PAD]", "[PAD]"]]
    ids = torch.tensor([[tok[t] for t in s] for s in sentences])
    token_types = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]])
    mask = (ids != tok["[PAD]"]).long()
    with torch.no_grad():
        hidden, pooled = bert_forward(weights, ids, token_types, mask)
    reference = {
        "note": "float32 PyTorch forward of model.safetensors by scripts/make-tiny-hf-checkpoint.py",
        "input_ids": ids.tolist(),
        "token_type_ids": token_types.tolist(),
        "attention_mask": mask.tolist(),
        "last_hidden_state_shape": list(hidden.shape),
        "last_hidden_state": [round(v, 7) for v in hidden.flatten().tolist()],
        "pooler_output_shape": list(pooled.shape),
        "pooler_output": [round(v, 7) for v in pooled.flatten().tolist()],
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f)
        f.write("\n")
    print(f"wrote {out}: {sum(t.numel() for t in weights.values())} values")


if __name__ == "__main__":
    main()
