#!/usr/bin/env bash
# One device call's measurements, in priority order, each stage under its own time limit so that
# the call ends inside the device's 10-minute command limit with whatever finished. Run on the GPU
# machine from the repository root after `source .gpu/enter.sh` (../shared/gpu/README.md):
#
#   bash bench/gpu-session.sh $OUT
#
# Stages (seconds), session 6's second plan: the device check (60); the 1B prefill at 1K, 4K, 8K and
# 32K, dense (80); the ONNX Runtime WebGPU peer at the same lengths (bench/peers/onnxruntime, 260);
# the lazy rescale's rate on the trained model's real attention (50); tensor-core attention at 32K
# and 128K with the rescale rate on the synthetic data (the rest).
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
stage device-check 60 node dist/gpu/check.mjs
stage prefill 80 node $bench --suite prefill --sizes 1b:1k,1b:4k,1b:8k,1b:32k,only:dense --json "$work/prefill.json"
PEER_RUN_TIMEOUT_S=190 stage peer 260 bash bench/peers/onnxruntime/gpu-run.sh "$work/peer"
stage rescale 50 node $bench --suite rescale --json "$work/rescale.json"
stage attention 150 node $bench --suite attention --sizes 32k,128k,sgonly --json "$work/attention.json"
kill $packer 2>/dev/null
tar czf "$out/results.tar.gz" -C "$work" .
rm -f "$out/results.tmp.tar.gz"
for f in "$work"/*.log; do echo "---- $(basename "$f")"; grep -v '^niah \|^\[' "$f" | tail -n 30; done
