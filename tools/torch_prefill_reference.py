#!/usr/bin/env python3
"""Native reference for the prefill benchmark: PyTorch + Hugging Face transformers on the same GPU.

Builds a random-weight LlamaForCausalLM with the Llama-3.2-1B or Llama-3-8B shape (the same
config.json fields as bench/suites/prefill.ts), in bfloat16 on CUDA with scaled-dot-product
(flash) attention, and times one forward over N tokens (logits of the last position only, as the
runtime's prefill). Not a WebGPU peer: it shows how far a WebGPU prefill is from the native stack.

Usage (on the GPU machine):
  python3 tools/torch_prefill_reference.py --model llama-3.2-1b --tokens 4096 --out out.json

Prints one JSON line per run and writes them all to --out.
"""
import argparse
import json
import statistics
import time

SHAPES = {
    "llama-3.2-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                         num_key_value_heads=8, head_dim=64, vocab_size=128256, rms_norm_eps=1e-5, rope_theta=500000.0,
                         max_position_embeddings=131072, tie_word_embeddings=True,
                         rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                           original_max_position_embeddings=8192)),
    "llama-3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                       num_key_value_heads=8, vocab_size=128256, rms_norm_eps=1e-5, rope_theta=500000.0,
                       max_position_embeddings=131072, tie_word_embeddings=False),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", choices=sorted(SHAPES), help="shape (repeatable; default both)")
    ap.add_argument("--tokens", type=int, action="append", help="prompt length (repeatable; default 4096)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    rows = []
    for name in args.model or sorted(SHAPES):
        cfg = LlamaConfig(**SHAPES[name], torch_dtype="bfloat16", attn_implementation="sdpa")
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
        for n in args.tokens or [4096]:
            ids = (torch.arange(n, device="cuda") * 2654435761 % cfg.vocab_size).unsqueeze(0)
            times = []
            with torch.inference_mode():
                for r in range(args.reps + 1):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
                    out.logits.float().cpu()
                    torch.cuda.synchronize()
                    if r > 0:
                        times.append((time.perf_counter() - t0) * 1000)
            ms = statistics.median(times)
            row = {"kernel": "prefill", "variant": "torch-sdpa-bf16", "shape": {"model": name, "tokens": n},
                   "median_ms": ms, "min_ms": min(times), "tok_per_s": n / (ms / 1000), "reps": args.reps,
                   "torch": torch.__version__, "device": torch.cuda.get_device_name()}
            print(json.dumps(row), flush=True)
            rows.append(row)
        del model
        torch.cuda.empty_cache()
    with open(args.out, "w") as f:
        json.dump({"rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
