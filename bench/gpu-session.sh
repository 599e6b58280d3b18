#!/usr/bin/env bash
# One device call's measurements, in priority order, each stage under its own time limit so that
# the call ends inside the device's 10-minute command limit with whatever finished. Run on the GPU
# machine from the repository root after `source .gpu/enter.sh` (../shared/gpu/README.md):
#
#   bash bench/gpu-session.sh $OUT
#
# Stages (seconds), session 4's plan: the device check of the kernel cases (70); decode at 4K and
# 128K, one-row vs tiled decode attention (150); the needle grid of the searched config, whose
# prefill times at 128K compare with the default Vertical-Slash's of session 3 only as a ratio to
# dense, so dense runs again beside it (260); the rest for attention at 32K with and without Dawn's
# bounds checks (--no-robustness).
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
stage device-check 70 node dist/gpu/check.mjs
stage decode 150 node $bench --suite decode --sizes 1b:4k,1b:128k --json "$work/decode.json"
stage niah-searched-dense 260 node $bench --suite niah --sizes 32k,64k,128k,only:searched,only:dense,only:vs --json "$work/niah-searched.json"
stage attention-checked 40 node $bench --suite attention --sizes 32k --json "$work/attention-checked.json"
stage attention-unchecked 40 node $bench --suite attention --sizes 32k --no-robustness --json "$work/attention-unchecked.json"
kill $packer 2>/dev/null
tar czf "$out/results.tar.gz" -C "$work" .
rm -f "$out/results.tmp.tar.gz"
for f in "$work"/*.log; do echo "---- $(basename "$f")"; grep -v '^niah \|^\[' "$f" | tail -n 30; done
