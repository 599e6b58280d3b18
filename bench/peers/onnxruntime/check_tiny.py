#!/usr/bin/env python3
"""Check the peer graph's math against a plain numpy Llama forward (float64).

Reads the weights of a model folder written by build_model.py (any size, but meant for
--tiny) and the last-token logits that run.mjs saved with --dump, recomputes those logits
with a straightforward Llama-3 forward written here from the definition (RMSNorm, rotary
embedding with llama3 frequency rescaling, causal grouped-query attention, SwiGLU MLP,
tied or untied lm_head) and compares. Also runs three deliberately wrong references
(no causal mask, interleaved rotary, no rotary at all) to show that the comparison would
catch such differences.

    python3 check_tiny.py --model /tmp/peer-tiny --dump /tmp/dump-cpu.json [--dump ...] [--tol 2e-2]

Exit status 1 if any dump differs from the reference by more than --tol (max |diff| over
max |logit|), or if its top token is not the reference's (up to that tolerance).
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def load_weights(folder):
    model = onnx.load(os.path.join(folder, "model.onnx"))  # external data is read from the same folder
    return {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}


def inv_freq_llama3(head_dim, theta, scaling):
    """Rotary inverse frequencies; with rope_type llama3 the long wavelengths are divided by
    `factor`, short ones kept, and the band between is interpolated."""
    freqs = theta ** (-np.arange(0, head_dim, 2) / head_dim)
    if not scaling:
        return freqs
    wavelen = 2 * np.pi / freqs
    lo = scaling["original_max_position_embeddings"] / scaling["low_freq_factor"]
    hi = scaling["original_max_position_embeddings"] / scaling["high_freq_factor"]
    out = freqs.copy()
    out[wavelen > lo] = freqs[wavelen > lo] / scaling["factor"]
    band = (wavelen <= lo) & (wavelen >= hi)
    t = (scaling["original_max_position_embeddings"] / wavelen[band] - scaling["low_freq_factor"]) / (
        scaling["high_freq_factor"] - scaling["low_freq_factor"])
    out[band] = (1 - t) * freqs[band] / scaling["factor"] + t * freqs[band]
    return out


def rope(x, pos, inv_freq, interleaved=False):
    """x [S, heads, D]; rotate pairs (i, i + D/2) (HF rotate_half), or (2i, 2i+1) if interleaved."""
    ang = pos[:, None] * inv_freq[None, :]  # [S, D/2]
    c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    if interleaved:
        a, b = x[..., 0::2], x[..., 1::2]
        out = np.empty_like(x)
        out[..., 0::2], out[..., 1::2] = a * c - b * s, b * c + a * s
        return out
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    return np.concatenate([a * c - b * s, b * c + a * s], axis=-1)


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def forward(W, cfg, ids, causal=True, interleaved=False, use_rope=True):
    L, H, NH, KV, D = cfg["layers"], cfg["hidden"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    eps = cfg["eps"]
    S = len(ids)
    inv = inv_freq_llama3(D, cfg["theta"], cfg.get("rope_scaling"))
    pos = np.arange(S, dtype=np.float64)
    E = W["model.embed_tokens.weight"]
    x = E[np.asarray(ids)]
    mask = np.triu(np.full((S, S), -np.inf), 1) if causal else np.zeros((S, S))
    for l in range(L):
        p = f"model.layers.{l}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], eps)
        if p + "attn.qkv_proj.MatMul.weight" in W:
            qkv = h @ W[p + "attn.qkv_proj.MatMul.weight"]
            q, k, v = np.split(qkv, [NH * D, NH * D + KV * D], axis=-1)
        else:
            q, k, v = (h @ W[p + f"attn.{n}_proj.MatMul.weight"] for n in "qkv")
        q, k, v = q.reshape(S, NH, D), k.reshape(S, KV, D), v.reshape(S, KV, D)
        if use_rope:
            q, k = rope(q, pos, inv, interleaved), rope(k, pos, inv, interleaved)
        out = np.empty((S, NH, D))
        group = NH // KV
        for hh in range(NH):
            kh = hh // group
            sc = q[:, hh, :] @ k[:, kh, :].T / math.sqrt(D) + mask
            sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
            out[:, hh, :] = (sc / sc.sum(axis=-1, keepdims=True)) @ v[:, kh, :]
        x = x + out.reshape(S, NH * D) @ W[p + "attn.o_proj.MatMul.weight"]
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], eps)
        g = h @ W[p + "mlp.gate_proj.MatMul.weight"]
        u = h @ W[p + "mlp.up_proj.MatMul.weight"]
        x = x + (g / (1 + np.exp(-g)) * u) @ W[p + "mlp.down_proj.MatMul.weight"]
    last = rmsnorm(x, W["model.layers.final_norm_layernorm.weight"], eps)[-1]
    return last @ (W["lm_head.MatMul.weight"] if "lm_head.MatMul.weight" in W else E.T)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--dump", action="append", required=True, help="JSON written by run.mjs --dump (repeatable)")
    ap.add_argument("--tol", type=float, default=2e-2, help="max |diff| / max |ref logit| allowed (default 2e-2)")
    args = ap.parse_args()
    cfg = json.load(open(os.path.join(args.model, "config.json")))
    W = load_weights(args.model)
    ok = True
    print(f"model {args.model}: {json.dumps({k: cfg[k] for k in ('layers', 'hidden', 'heads', 'kv_heads', 'head_dim', 'vocab', 'dtype', 'qkv', 'tied')})}")
    print(f"{'dump':<28} {'tokens':>6} {'max|ref|':>9} {'max|diff|':>10} {'rel':>9} {'argmax':>11}  wrong refs (rel): no-causal / interleaved / no-rope")
    for path in args.dump:
        d = json.load(open(path))
        if not d["runs"]:
            print(f"{os.path.basename(path)}: no runs in this dump")
            ok = False
        for r in d["runs"]:
            if "error" in r:
                print(f"{os.path.basename(path)} ({d.get('ep')},{d.get('dtype')}) {r['tokens']:>6}: run failed: {r['error'][:200]}")
                ok = False
                continue
            ids, got = r["ids"], np.asarray(r["logits"], dtype=np.float64).reshape(-1)
            ref = forward(W, cfg, ids)
            scale = np.abs(ref).max()
            rel = np.abs(got - ref).max() / scale
            wrong = [np.abs(got - forward(W, cfg, ids, **kw)).max() / scale
                     for kw in ({"causal": False}, {"interleaved": True}, {"use_rope": False})]
            # argmax must agree unless the reference's top two are closer than the tolerance
            good = rel <= args.tol and ref[int(np.argmax(got))] >= ref.max() - args.tol * scale
            ok &= bool(good)
            tag = f"{os.path.basename(path)} ({d.get('ep')},{d.get('dtype')})"
            print(f"{tag:<28} {len(ids):>6} {scale:>9.4f} {np.abs(got - ref).max():>10.2e} {rel:>9.2e} "
                  f"{int(np.argmax(got)):>5}/{int(np.argmax(ref)):<5}  {wrong[0]:.2e} / {wrong[1]:.2e} / {wrong[2]:.2e}"
                  f"  {'OK' if good else 'MISMATCH'}")
    print("all within tolerance" if ok else f"FAILED: a run failed, or differs from the reference by more than {args.tol} (or in argmax)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
