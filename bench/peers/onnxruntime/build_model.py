#!/usr/bin/env python3
"""Write a Llama-3.2-1B-shaped fp16 decoder as an ONNX graph with ONNX Runtime's fused
contrib ops (domain com.microsoft), the way onnxruntime-genai's model builder lays out a
Llama for the WebGPU execution provider:

  input_ids -> Gather(embed) -> 16 x [ (Skip)SimplifiedLayerNormalization
                                        -> packed QKV MatMul
                                        -> GroupQueryAttention(do_rotary=1, cos/sin caches)
                                        -> O MatMul
                                        -> SkipSimplifiedLayerNormalization
                                        -> gate/up MatMul, Sigmoid*Mul (SiLU), Mul, down MatMul ]
            -> SkipSimplifiedLayerNormalization (final norm)
            -> Gather(last position) -> lm_head -> logits [B, 1, vocab]

Weights are random (seeded), stored as external data next to model.onnx (the full model is
~2.5 GB of fp16, over protobuf's 2 GB limit). Only `onnx` and `numpy` are used, and only
long-stable onnx.helper APIs, so onnx 1.12 (Debian) and current releases both work.

    python3 build_model.py --out /tmp/peer-model            # Llama-3.2-1B shape
    python3 build_model.py --tiny --out /tmp/peer-tiny      # 2 layers, hidden 128 (tests)
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper

MS = "com.microsoft"

# Llama-3.2-1B (config.json of meta-llama/Llama-3.2-1B): the shape the peer is built to.
LLAMA_32_1B = dict(layers=16, hidden=2048, intermediate=8192, heads=32, kv_heads=8, head_dim=64,
                   vocab=128256, eps=1e-5, theta=500000.0)
TINY = dict(layers=2, hidden=128, intermediate=256, heads=4, kv_heads=2, head_dim=32,
            vocab=512, eps=1e-5, theta=500000.0)
# rope_scaling of Llama-3.2-1B ("rope_type": "llama3"); it only changes the cos/sin values.
LLAMA3_ROPE_SCALING = dict(factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                           original_max_position_embeddings=8192)


def rope_inv_freq(head_dim, theta, llama3_scaling):
    """Inverse frequencies of rotary position embedding (length head_dim/2), with the
    'llama3' frequency rescaling when asked. Shared with check_tiny.py's reference."""
    inv = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    if not llama3_scaling:
        return inv
    s = LLAMA3_ROPE_SCALING
    old_len = s["original_max_position_embeddings"]
    low_wavelen = old_len / s["low_freq_factor"]
    high_wavelen = old_len / s["high_freq_factor"]
    wavelen = 2 * math.pi / inv
    smooth = (old_len / wavelen - s["low_freq_factor"]) / (s["high_freq_factor"] - s["low_freq_factor"])
    mid = (1 - smooth) * inv / s["factor"] + smooth * inv
    return np.where(wavelen < high_wavelen, inv, np.where(wavelen > low_wavelen, inv / s["factor"], mid))


class Weights:
    """Random fp16 tensors, written straight into one external-data file.

    By default every weight is a slice, at a random offset, of one seeded pool of N(0,1)
    fp16 values (scaled to the weight's std), so that ~1.2 G parameters cost a copy each
    rather than a Gaussian draw each (a full draw takes ~30 s on numpy). With --fresh every
    weight is drawn independently. Either way the values are seeded and reproducible.
    """

    def __init__(self, out_dir, data_name, seed, pool_size, fresh, dtype):
        self.dtype = dtype
        self.rng = np.random.default_rng(seed)
        self.fresh = fresh
        self.pool = None
        if not fresh:
            self.pool = self.rng.standard_normal(pool_size, dtype=np.float32).astype(np.float16)
        self.data_name = data_name
        self.f = open(os.path.join(out_dir, data_name), "wb")
        self.offset = 0
        self.initializers = []

    def normal(self, shape, std, mean=0.0):
        n = int(np.prod(shape))
        if self.fresh:
            a = self.rng.standard_normal(n, dtype=np.float32)
            a *= std
            a += mean
            return a.astype(self.dtype).reshape(shape)
        out = np.empty(n, dtype=np.float16)
        chunk = max(1, self.pool.size // 2)
        pos = 0
        while pos < n:  # weights larger than half the pool are stitched from several slices
            m = min(n - pos, chunk)
            start = int(self.rng.integers(0, self.pool.size - m + 1))
            np.multiply(self.pool[start:start + m], np.float16(std), out=out[pos:pos + m])
            pos += m
        if mean:
            out += np.float16(mean)
        return out.reshape(shape).astype(self.dtype, copy=False)

    def add(self, name, array):
        """Append array to the external-data file and record an initializer pointing at it."""
        array = np.ascontiguousarray(array)
        pad = (-self.offset) % 4096  # page-align each tensor (ORT may mmap the file)
        if pad:
            self.f.write(b"\0" * pad)
            self.offset += pad
        raw = array.tobytes()
        self.f.write(raw)
        t = TensorProto()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(array.dtype) if hasattr(helper, "np_dtype_to_tensor_dtype") \
            else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[array.dtype]
        t.dims.extend(array.shape)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", self.data_name), ("offset", str(self.offset)), ("length", str(len(raw)))):
            e = t.external_data.add()
            e.key = k
            e.value = v
        self.initializers.append(t)
        self.offset += len(raw)
        return name

    def close(self):
        self.f.close()


def build(cfg, args):
    L, H, I = cfg["layers"], cfg["hidden"], cfg["intermediate"]
    NH, KV, D, V = cfg["heads"], cfg["kv_heads"], cfg["head_dim"], cfg["vocab"]
    eps = cfg["eps"]
    qkv_out = (NH + 2 * KV) * D
    os.makedirs(args.out, exist_ok=True)
    npdt = np.float16 if args.dtype == "fp16" else np.float32
    FP = TensorProto.FLOAT16 if args.dtype == "fp16" else TensorProto.FLOAT
    w = Weights(args.out, "model.onnx.data", args.seed, args.pool, args.fresh, npdt)

    nodes, small_inits = [], []

    def const(name, value, dtype=np.int64):
        small_inits.append(helper.make_tensor(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
                                              if hasattr(helper, "np_dtype_to_tensor_dtype")
                                              else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[np.dtype(dtype)],
                                              np.shape(value), np.asarray(value, dtype=dtype).flatten().tolist()))
        return name

    def node(op, inputs, outputs, name, domain=None, **attrs):
        kw = {"domain": domain} if domain else {}
        nodes.append(helper.make_node(op, inputs, outputs, name=name, **kw, **attrs))
        return outputs[0]

    # ---- inputs / outputs (names as the model builder and transformers.js use them)
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch_size", "sequence_length"]),
        helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch_size", "total_sequence_length"]),
    ]
    outputs = [helper.make_tensor_value_info("logits", FP, ["batch_size", 1, V])]
    for i in range(L):
        for kv in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(
                f"past_key_values.{i}.{kv}", FP, ["batch_size", KV, "past_sequence_length", D]))
            outputs.append(helper.make_tensor_value_info(
                f"present.{i}.{kv}", FP, ["batch_size", KV, "total_sequence_length", D]))

    # ---- GQA bookkeeping from attention_mask (as the builder does):
    # seqlens_k = sum(mask) - 1 (int32, per batch), total_sequence_length = mask.shape[1] (int32 scalar)
    const("/c/axes1", [1])
    const("/c/one", [1])
    const("/c/one_scalar", 1)
    node("ReduceSum", ["attention_mask", "/c/axes1"], ["/mask/sum"], "/mask/ReduceSum", keepdims=0)
    node("Sub", ["/mask/sum", "/c/one"], ["/mask/sub"], "/mask/Sub")
    node("Cast", ["/mask/sub"], ["seqlens_k"], "/mask/Sub/Cast", to=TensorProto.INT32)
    node("Shape", ["attention_mask"], ["/mask/shape"], "/mask/Shape")
    node("Gather", ["/mask/shape", "/c/one_scalar"], ["/mask/total"], "/mask/Gather", axis=0)
    node("Cast", ["/mask/total"], ["total_seq_len"], "/mask/Gather/Cast", to=TensorProto.INT32)

    # ---- rotary caches [max_seq, head_dim/2], fp16 (as the builder stores them)
    inv = rope_inv_freq(D, cfg["theta"], not args.no_rope_scaling)
    ang = np.outer(np.arange(args.max_seq, dtype=np.float64), inv)
    w.add("cos_cache", np.cos(ang).astype(npdt))
    w.add("sin_cache", np.sin(ang).astype(npdt))

    # ---- embedding (tied with lm_head unless --untied)
    embed = w.add("model.embed_tokens.weight", w.normal((V, H), 1.0 / math.sqrt(H)))
    x = node("Gather", [embed, "input_ids"], ["/model/embed_tokens/output_0"], "/model/embed_tokens/Gather", axis=0)

    def norm_weight(name):
        return w.add(name, w.normal((H,), 0.02, mean=1.0))

    residual, branch = x, None
    for i in range(L):
        p = f"/model/layers.{i}"
        # input norm: SimplifiedLayerNormalization on layer 0, SkipSimplified... after
        wn = norm_weight(f"model.layers.{i}.input_layernorm.weight")
        if branch is None:
            h = node("SimplifiedLayerNormalization", [residual, wn], [f"{p}/input_layernorm/output_0"],
                     f"{p}/input_layernorm/LayerNorm", axis=-1, epsilon=eps, stash_type=1)
        else:
            h, res1 = f"{p}/input_layernorm/output_0", f"{p}/input_layernorm/output_3"
            node("SkipSimplifiedLayerNormalization", [residual, branch, wn], [h, "", "", res1],
                 f"{p}/input_layernorm/SkipLayerNorm", domain=MS, epsilon=eps)
            residual = res1
        # attention
        gqa_attrs = dict(num_heads=NH, kv_num_heads=KV, scale=1.0 / math.sqrt(D), do_rotary=1,
                         rotary_interleaved=0, local_window_size=-1, softcap=0.0)
        if args.qkv == "packed":
            wqkv = w.add(f"model.layers.{i}.attn.qkv_proj.MatMul.weight", w.normal((H, qkv_out), 1.0 / math.sqrt(H)))
            q = node("MatMul", [h, wqkv], [f"{p}/attn/qkv_proj/MatMul/output_0"], f"{p}/attn/qkv_proj/MatMul")
            k = v = ""
        else:
            wq = w.add(f"model.layers.{i}.attn.q_proj.MatMul.weight", w.normal((H, NH * D), 1.0 / math.sqrt(H)))
            wk = w.add(f"model.layers.{i}.attn.k_proj.MatMul.weight", w.normal((H, KV * D), 1.0 / math.sqrt(H)))
            wv = w.add(f"model.layers.{i}.attn.v_proj.MatMul.weight", w.normal((H, KV * D), 1.0 / math.sqrt(H)))
            q = node("MatMul", [h, wq], [f"{p}/attn/q_proj/MatMul/output_0"], f"{p}/attn/q_proj/MatMul")
            k = node("MatMul", [h, wk], [f"{p}/attn/k_proj/MatMul/output_0"], f"{p}/attn/k_proj/MatMul")
            v = node("MatMul", [h, wv], [f"{p}/attn/v_proj/MatMul/output_0"], f"{p}/attn/v_proj/MatMul")
        attn = node("GroupQueryAttention",
                    [q, k, v, f"past_key_values.{i}.key", f"past_key_values.{i}.value", "seqlens_k",
                     "total_seq_len", "cos_cache", "sin_cache"],
                    [f"{p}/attn/GroupQueryAttention/output_0", f"present.{i}.key", f"present.{i}.value"],
                    f"{p}/attn/GroupQueryAttention", domain=MS, **gqa_attrs)
        wo = w.add(f"model.layers.{i}.attn.o_proj.MatMul.weight", w.normal((NH * D, H), 1.0 / math.sqrt(NH * D)))
        o = node("MatMul", [attn, wo], [f"{p}/attn/o_proj/MatMul/output_0"], f"{p}/attn/o_proj/MatMul")
        # post-attention norm (adds the residual)
        wpn = norm_weight(f"model.layers.{i}.post_attention_layernorm.weight")
        h2, res2 = f"{p}/post_attention_layernorm/output_0", f"{p}/post_attention_layernorm/output_3"
        node("SkipSimplifiedLayerNormalization", [residual, o, wpn], [h2, "", "", res2],
             f"{p}/post_attention_layernorm/SkipLayerNorm", domain=MS, epsilon=eps)
        # SwiGLU MLP: down( silu(gate(h)) * up(h) ), SiLU as Sigmoid + Mul (as the builder emits it)
        wg = w.add(f"model.layers.{i}.mlp.gate_proj.MatMul.weight", w.normal((H, I), 1.0 / math.sqrt(H)))
        wu = w.add(f"model.layers.{i}.mlp.up_proj.MatMul.weight", w.normal((H, I), 1.0 / math.sqrt(H)))
        wd = w.add(f"model.layers.{i}.mlp.down_proj.MatMul.weight", w.normal((I, H), 1.0 / math.sqrt(I)))
        g = node("MatMul", [h2, wg], [f"{p}/mlp/gate_proj/MatMul/output_0"], f"{p}/mlp/gate_proj/MatMul")
        u = node("MatMul", [h2, wu], [f"{p}/mlp/up_proj/MatMul/output_0"], f"{p}/mlp/up_proj/MatMul")
        sg = node("Sigmoid", [g], [f"{p}/mlp/act_fn/Sigmoid/output_0"], f"{p}/mlp/act_fn/Sigmoid")
        act = node("Mul", [g, sg], [f"{p}/mlp/act_fn/Mul/output_0"], f"{p}/mlp/act_fn/Mul")
        m = node("Mul", [act, u], [f"{p}/mlp/Mul/output_0"], f"{p}/mlp/Mul")
        d = node("MatMul", [m, wd], [f"{p}/mlp/down_proj/MatMul/output_0"], f"{p}/mlp/down_proj/MatMul")
        residual, branch = res2, d

    # final norm (last SkipSimplifiedLayerNormalization: only the normalized output is used)
    wf = w.add("model.layers.final_norm_layernorm.weight", w.normal((H,), 0.02, mean=1.0))
    hf = node("SkipSimplifiedLayerNormalization", [residual, branch, wf], ["/model/norm/output_0"],
              "/model/norm/SkipLayerNorm", domain=MS, epsilon=eps)

    # lm_head on the last position only (the builder's prune_lm_head layout: Gather(-1) on the
    # sequence axis, so [S, vocab] logits are never made)
    const("/c/minus_one", -1)
    last = node("Gather", [hf, "/c/minus_one"], ["/lm_head/prune/Gather/output_0"], "/lm_head/prune/Gather", axis=1)
    if args.untied:
        wl = w.add("lm_head.MatMul.weight", w.normal((H, V), 1.0 / math.sqrt(H)))
        last3 = node("Unsqueeze", [last, "/c/axes1"], ["/lm_head/prune/Unsqueeze/output_0"], "/lm_head/prune/Unsqueeze")
        node("MatMul", [last3, wl], ["logits"], "/lm_head/MatMul")
    else:
        # tied: logits = last @ embed^T, one [vocab, hidden] weight (Gemm with transB=1)
        lg = node("Gemm", [last, embed], ["/lm_head/Gemm/output_0"], "/lm_head/Gemm", transB=1)
        node("Unsqueeze", [lg, "/c/axes1"], ["logits"], "/lm_head/Unsqueeze")

    w.close()
    graph = helper.make_graph(nodes, "llama-3.2-1b-shaped-peer", inputs, outputs,
                              initializer=small_inits + w.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)],
                              producer_name="sparse-prefill bench/peers/onnxruntime/build_model.py")
    model.ir_version = 8
    meta = dict(cfg, dtype=args.dtype, qkv=args.qkv, tied=not args.untied, max_seq=args.max_seq, seed=args.seed,
                rope_scaling=None if args.no_rope_scaling else dict(LLAMA3_ROPE_SCALING, rope_type="llama3"),
                weights="fresh" if args.fresh else f"pool of {args.pool} N(0,1) fp16 values, sliced at random offsets")
    for k, v in (("peer_config", json.dumps(meta)),):
        e = model.metadata_props.add()
        e.key, e.value = k, v
    with open(os.path.join(args.out, "model.onnx"), "wb") as f:
        f.write(model.SerializeToString())
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return w.offset


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (model.onnx, model.onnx.data, config.json)")
    ap.add_argument("--tiny", action="store_true", help="tiny preset for tests: " + json.dumps(TINY))
    for k in ("layers", "hidden", "intermediate", "heads", "kv_heads", "head_dim", "vocab"):
        ap.add_argument("--" + k.replace("_", "-"), type=int, help=f"override (Llama-3.2-1B: {LLAMA_32_1B[k]})")
    ap.add_argument("--eps", type=float)
    ap.add_argument("--theta", type=float)
    ap.add_argument("--max-seq", type=int, default=32768 + 1024, help="rows of the cos/sin caches (default 33792)")
    ap.add_argument("--qkv", choices=("packed", "separate"), default="packed",
                    help="one packed QKV MatMul feeding GQA (builder default) or separate Q/K/V MatMuls")
    ap.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16",
                    help="weights/activations type (fp32 only for WebGPU devices without shader-f16, e.g. SwiftShader)")
    ap.add_argument("--untied", action="store_true", help="separate [hidden, vocab] lm_head MatMul weight")
    ap.add_argument("--no-rope-scaling", action="store_true", help="plain rope (no llama3 frequency rescaling)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--pool", type=int, default=1 << 26, help="size of the random pool weights are sliced from")
    ap.add_argument("--fresh", action="store_true", help="draw every weight independently (slower)")
    args = ap.parse_args()
    cfg = dict(TINY if args.tiny else LLAMA_32_1B)
    for k in list(cfg):
        v = getattr(args, k, None)
        if v is not None:
            cfg[k] = v
    assert cfg["heads"] % cfg["kv_heads"] == 0 and cfg["head_dim"] % 2 == 0
    t0 = time.time()
    nbytes = build(cfg, args)
    print(f"wrote {args.out}/model.onnx (+ {nbytes / 2**30:.2f} GiB external data) in {time.time() - t0:.1f} s; "
          f"onnx {onnx.__version__}, numpy {np.__version__}; config {json.dumps(cfg)}", file=sys.stderr)


if __name__ == "__main__":
    main()
