#!/usr/bin/env bash
# One device call's measurements, in priority order, each stage under its own time limit so that
# the call ends inside the device's 10-minute command limit with whatever finished. Run on the GPU
# machine from the repository root after `source .gpu/enter.sh` (../shared/gpu/README.md):
#
#   bash bench/gpu-session.sh $OUT
#
# (Calls that ran the ONNX Runtime peer split the plan into parts a and b: the peer's kit, 13 MB,
# does not fit one call's 64 MiB carry beside .gpu, dist and the tracked tree, so part b ran right
# after part a, while the machine kept its unpacked node and Vulkan loader, with dist and the kit
# carried. See commit b792aeb's version of this script.)
#
# Stages (seconds), session 6's last call: the tensor-core ceiling probe and the Llama-shape matmul,
# each with Dawn's bounds checks (as browsers run) and without (--no-robustness) (4 x 40); the 1B
# prefill at 4K both ways (2 x 40); PyTorch's prefill and cuBLAS / SDPA (80).
# Everything lands in OUT/results.tar.gz (bench JSON, per-grid JSON, heat map, logs; repacked every
# 15 s while the stages run); the tables are printed last.
set -uo pipefail
out=${1:?usage: gpu-session.sh OUT_DIR}
work=$(mktemp -d)
export BENCH_ARTIFACTS=$work/niah
start=$SECONDS
left() { echo $(( ${BUDGET:-575} - (SECONDS - start) )); }
stage() { # name seconds command...
  local name=$1 secs=$2; shift 2
  local t=$(( secs < $(left) ? secs : $(left) ))
  if [ "$t" -le 5 ]; then echo "== $name: skipped (no time left)"; return; fi
  echo "== $name (up to ${t}s)"
  timeout "$t" "$@" > "$work/$name.log" 2>&1
  echo "   exit $? after $(( SECONDS - start ))s"
}
bench=dist/gpu/bench.mjs
# Whatever has finished is packed every 15 s, so a call cut short still brings its results back.
( while sleep 15; do tar czf "$out/results.tmp.tar.gz" -C "$work" . 2>/dev/null && mv "$out/results.tmp.tar.gz" "$out/results.tar.gz"; done ) &
packer=$!
stage mma 40 node $bench --suite mma --json "$work/mma.json"
stage mma-unchecked 40 node $bench --no-robustness --suite mma --json "$work/mma-unchecked.json"
stage matmul 40 node $bench --suite matmul --sizes 4096x14336x4096 --json "$work/matmul.json"
stage matmul-unchecked 40 node $bench --no-robustness --suite matmul --sizes 4096x14336x4096 --json "$work/matmul-unchecked.json"
stage prefill 40 node $bench --suite prefill --sizes 1b:4k,only:dense --json "$work/prefill.json"
stage prefill-unchecked 40 node $bench --no-robustness --suite prefill --sizes 1b:4k,only:dense --json "$work/prefill-unchecked.json"
stage torch-prefill 40 python3 tools/torch_prefill_reference.py --model llama-3.2-1b --tokens 4096 --out "$work/torch-prefill.json"
stage torch-kernels 40 python3 tools/torch_kernel_reference.py --out "$work/torch-kernels.json"
kill $packer 2>/dev/null
tar czf "$out/results.tar.gz" -C "$work" .
rm -f "$out/results.tmp.tar.gz"
for f in "$work"/*.log; do echo "---- $(basename "$f")"; grep -v '^niah \|^\[' "$f" | tail -n 30; done
