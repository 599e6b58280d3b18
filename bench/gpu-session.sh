#!/usr/bin/env bash
# One device call's measurements, in priority order, each stage under its own time limit so that
# the call ends inside the device's 10-minute command limit with whatever finished. Run on the GPU
# machine from the repository root after `source .gpu/enter.sh` (../shared/gpu/README.md):
#
#   bash bench/gpu-session.sh $OUT
#
# Stages (seconds), session 5's fourth plan (the third stopped at matmul 'auto' not compiling its
# tensor-core path): the device check (70); the 1B prefill at 4K (40); decode at 4K and 128K (50); the
# needle grid at 128K, dense, default Vertical-Slash and searched config (the rest).
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
stage device-check 70 node dist/gpu/check.mjs
stage prefill 50 node $bench --suite prefill --sizes 1b:4k,only:dense,only:dense-f32attn --json "$work/prefill.json"
stage decode 60 node $bench --suite decode --sizes 1b:4k,1b:128k,only:replay --json "$work/decode.json"
stage niah-128k 250 node $bench --suite niah --sizes 128k,only:dense,only:vs,only:searched --json "$work/niah-128k.json"
kill $packer 2>/dev/null
tar czf "$out/results.tar.gz" -C "$work" .
rm -f "$out/results.tmp.tar.gz"
for f in "$work"/*.log; do echo "---- $(basename "$f")"; grep -v '^niah \|^\[' "$f" | tail -n 30; done
