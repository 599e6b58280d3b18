#!/usr/bin/env bash
# One device call's measurements, in priority order, each stage under its own time limit so that
# the call ends inside the device's 10-minute command limit with whatever finished. Run on the GPU
# machine from the repository root after `source .gpu/enter.sh` (../shared/gpu/README.md):
#
#   bash bench/gpu-session.sh $OUT [PART]
#
# PART (default all) runs one half of the plan: the peer's kit (13 MB) does not fit one call's 64 MiB
# carry beside .gpu, dist and the tracked tree, so part a runs with .gpu + dist carried and part b
# right after it (the machine keeps .gpu while warm) with dist + the kit.
#
# Stages (seconds), session 6's closing plan, with one barrier less per attention key tile (the
# rescale decision rides on the barrier after P). Part a: the device check (60); the attention
# ablation (50); tensor-core attention at 32K and 128K with Dawn's bounds checks (as browsers run)
# and without (--no-robustness) (2 x 60); the 1B prefill at 4K and 32K, both ways (2 x 50); the
# Llama-shape matmul without bounds checks (40). Part b (the peer's kit carried instead of .gpu,
# right after part a while the machine keeps its unpacked node and Vulkan loader): the 1B prefill
# at 1K, 4K, 8K and 32K, dense (80), then the ONNX Runtime WebGPU peer at the same lengths in the
# same call (bench/peers/onnxruntime/gpu-run.sh, 330).
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
part=${2:-all}
if [ "$part" != b ]; then
  stage device-check 60 node dist/gpu/check.mjs
  stage ablate 50 node $bench --suite attention --sizes ablate --json "$work/ablate.json"
  stage attention 60 node $bench --suite attention --sizes 32k,128k,sgonly --json "$work/attention.json"
  stage attention-unchecked 60 node $bench --no-robustness --suite attention --sizes 32k,128k,sgonly --json "$work/attention-unchecked.json"
  stage prefill 50 node $bench --suite prefill --sizes 1b:4k,1b:32k,only:dense --json "$work/prefill.json"
  stage prefill-unchecked 50 node $bench --no-robustness --suite prefill --sizes 1b:4k,1b:32k,only:dense --json "$work/prefill-unchecked.json"
  stage matmul-unchecked 40 node $bench --no-robustness --suite matmul --sizes 4096x14336x4096 --json "$work/matmul-unchecked.json"
fi
if [ "$part" != a ]; then
  stage prefill-b 80 node $bench --suite prefill --sizes 1b:1k,1b:4k,1b:8k,1b:32k,only:dense --json "$work/prefill-b.json"
  PEER_RUN_TIMEOUT_S=250 stage peer 330 bash bench/peers/onnxruntime/gpu-run.sh "$work/peer"
fi
kill $packer 2>/dev/null
tar czf "$out/results.tar.gz" -C "$work" .
rm -f "$out/results.tmp.tar.gz"
for f in "$work"/*.log; do echo "---- $(basename "$f")"; grep -v '^niah \|^\[' "$f" | tail -n 30; done
