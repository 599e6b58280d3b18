#!/usr/bin/env python3
"""Reference outputs from Hugging Face transformers for a fixture model folder.

Loads the folder with AutoModelForCausalLM (eager attention, float64 by default), runs one
forward over fixed token ids, and writes a small JSON that test/model_io.test.ts compares the
project's float64 CPU reference (test/reference/model.ts) against:

  hidden[l]      residual stream after decoder layer l, all positions, [T][H]   (forward hooks)
  final_hidden   after the final RMSNorm, all positions, [T][H]
  top            the 64 largest last-position logits: {"ids": [...], "values": [...]}
  sample         last-position logits at ids 0, stride, 2*stride, ...: {"stride": s, "values": [...]}
  stats          max / mean / std of all last-position logits

Usage (see test/fixtures/README.md):
  python3 tools/hf_reference.py .fixtures/llama-untied-bf16 \
      --ids test/fixtures/prompt_ids.json --out test/fixtures/hf/llama-untied-bf16.json

Only config.json and the safetensors files are needed (token ids come from the JSON file, so the
tokenizer files may be left behind).
"""
import argparse
import json
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", help="fixture folder (config.json + model.safetensors or shards)")
    ap.add_argument("--ids", required=True, help="JSON file: {fixture_name: [token ids]} or a plain list")
    ap.add_argument("--key", help="key in the ids file (default: the folder's name)")
    ap.add_argument("--out", required=True, help="output JSON path")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    ap.add_argument("--top", type=int, default=64)
    ap.add_argument("--stride", type=int, default=61, help="stride of the sampled logits (61: prime, hits every residue)")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    name = args.key or os.path.basename(os.path.normpath(args.model_dir))
    with open(args.ids) as f:
        ids_file = json.load(f)
    ids = ids_file if isinstance(ids_file, list) else ids_file[name]
    dtype = getattr(torch, args.dtype)

    kwargs = dict(attn_implementation="eager")
    try:
        model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=dtype, **kwargs)
    except TypeError:  # transformers < 4.56 names it torch_dtype
        model = AutoModelForCausalLM.from_pretrained(args.model_dir, torch_dtype=dtype, **kwargs)
    model.eval()
    device = "cuda" if torch.cuda.is_available() and args.dtype == "float32" else "cpu"
    model.to(device)

    captured = {}

    def hook(key):
        def fn(_module, _inputs, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            captured[key] = out.detach().to("cpu", torch.float64)[0]

        return fn

    layers = model.model.layers
    handles = [layer.register_forward_hook(hook(f"layer{i}")) for i, layer in enumerate(layers)]
    handles.append(model.model.norm.register_forward_hook(hook("norm")))

    input_ids = torch.tensor([ids], dtype=torch.long, device=device)
    with torch.no_grad():
        out = model(input_ids=input_ids, use_cache=False)
    for h in handles:
        h.remove()

    logits = out.logits[0, -1].detach().to("cpu", torch.float64)
    top = torch.topk(logits, args.top)
    result = {
        "fixture": name,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "dtype": args.dtype,
        "device": device,
        "ids": ids,
        "vocab": int(logits.shape[0]),
        "hidden": [captured[f"layer{i}"].tolist() for i in range(len(layers))],
        "final_hidden": captured["norm"].tolist(),
        "top": {"ids": top.indices.tolist(), "values": top.values.tolist()},
        "sample": {"stride": args.stride, "values": logits[:: args.stride].tolist()},
        "stats": {"max": logits.max().item(), "mean": logits.mean().item(), "std": logits.std().item()},
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(f"{name}: {len(ids)} tokens, top logit id {result['top']['ids'][0]} = {result['top']['values'][0]:.6f} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
