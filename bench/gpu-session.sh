#!/usr/bin/env bash
# One device call's measurements, in priority order, each stage under its own time limit so that
# the call ends inside the device's 10-minute command limit with whatever finished. Run on the GPU
# machine from the repository root after `source .gpu/enter.sh` (../shared/gpu/README.md):
#
#   bash bench/gpu-session.sh $OUT
#
# Stages (seconds), session 5's second plan: the tensor-core ceiling probe, loops vs written out
# (mma, 50); the device check of the kernel cases (90); the subgroup-matrix matmul sweep with the
# written-out tiles (200); decode at 4K and 128K with the parallel one-row kernel, replayed and
# profiled (the rest).
# Everything lands in OUT/results.tar.gz (bench JSON, per-grid JSON, heat map, logs; repacked every
# 15 s while the stages run); the tables are printed last.
set -uo pipefail
out=${1:?usage: gpu-session.sh OUT_DIR}
work=$(mktemp -d)
export BENCH_ARTIFACTS=$work/niah
start=$SECONDS
left() { echo $(( ${BUDGET:-560} - (SECONDS - start) )); }
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
stage mma 50 node $bench --suite mma --json "$work/mma.json"
stage device-check 90 node dist/gpu/check.mjs
stage matmul-tune 200 node $bench --suite matmul --sizes 4096x14336x4096,tune-sg --json "$work/matmul-tune.json"
stage decode 150 node $bench --suite decode --sizes 1b:4k,1b:128k,only:replay,only:profile --json "$work/decode.json"
kill $packer 2>/dev/null
tar czf "$out/results.tar.gz" -C "$work" .
rm -f "$out/results.tmp.tar.gz"
for f in "$work"/*.log; do echo "---- $(basename "$f")"; grep -v '^niah \|^\[' "$f" | tail -n 30; done
