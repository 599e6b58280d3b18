#!/usr/bin/env bash
# Runs the ONNX Runtime WebGPU peer on the GPU machine. Call it from the repo root (or
# anywhere: it cds there) with bench/peers/onnxruntime/kit carried along (bash pack.sh):
#
#   bash bench/peers/onnxruntime/gpu-run.sh "$OUT"
#
# Steps, each under a `timeout`:
#   0. source .gpu/enter.sh unless already done (Vulkan loader, NVIDIA ICD, node on PATH)
#   1. source kit/enter.sh (unpacks onnxruntime-node into /tmp/ort-peer)
#   2. tiny correctness check on this GPU: a 2-layer fp16 model, WebGPU and CPU EP logits at 37,
#      300 and 1100 tokens against check_tiny.py's numpy Llama forward (seconds)
#   3. build the Llama-3.2-1B-shaped fp16 model into $PEER_MODEL_DIR (~20 s, 2.5 GB)
#   4. run.mjs at $PEER_LENGTHS on the WebGPU EP -> OUT_DIR/peer.json; if the process dies
#      (device lost, killed), once more with --resume for the lengths not yet recorded
# Writes OUT_DIR/peer.json and OUT_DIR/peer.log (everything printed). Exit status 0 when
# peer.json has a row for every length (a row may hold an error), else 1.
#
# Knobs (environment): PEER_LENGTHS (1024,4096,8192,32768), PEER_RUNS (3 timed runs per
# length), PEER_BUDGET_S (60: fewer timed runs when the warm-up says they would take longer),
# PEER_RUN_TIMEOUT_S (330: whole run.mjs), PEER_MODEL_DIR (/tmp/peer-model),
# PEER_SKIP_TINY=1, PEER_EXTRA (more run.mjs arguments, e.g. "--webgpu-option validationMode=disabled").
set -uo pipefail
out=${1:?usage: gpu-run.sh OUT_DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
kit=$here/kit
log=$out/peer.log
cd "$root" || exit 1
exec > >(tee -a "$log") 2>&1

lengths=${PEER_LENGTHS:-1024,4096,8192,32768}
runs=${PEER_RUNS:-3}
budget=${PEER_BUDGET_S:-60}
run_timeout=${PEER_RUN_TIMEOUT_S:-330}
model=${PEER_MODEL_DIR:-/tmp/peer-model}
py=${PYTHON:-python3}
t0=$SECONDS
stamp() { echo "== gpu-run.sh [$((SECONDS - t0)) s] $*"; }

[ -f "$kit/enter.sh" ] || { echo "gpu-run.sh: no $kit/enter.sh: run bash bench/peers/onnxruntime/pack.sh here and carry bench/peers/onnxruntime/kit"; exit 1; }
if [ -z "${VK_DRIVER_FILES:-}" ] || ! command -v node >/dev/null; then
  [ -f .gpu/enter.sh ] || { echo "gpu-run.sh: node/Vulkan not set up and no .gpu/enter.sh (bash ../shared/gpu/pack.sh, carry .gpu)"; exit 1; }
  stamp "source .gpu/enter.sh"
  # shellcheck disable=SC1091
  source .gpu/enter.sh
fi
stamp "source kit/enter.sh"
# shellcheck disable=SC1091
source "$kit/enter.sh"
export GPU_NAME=${GPU_NAME:-$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)}
echo "node $(node --version), python $($py -c 'import sys, onnx, numpy; print(sys.version.split()[0], "onnx", onnx.__version__, "numpy", numpy.__version__)'), GPU: ${GPU_NAME:-?}"

export PEER_TINY_CHECK=skipped
if [ "${PEER_SKIP_TINY:-0}" != 1 ]; then
  stamp "tiny check (fp16, 2 layers): WebGPU and CPU EP vs numpy reference"
  tiny=/tmp/peer-tiny-check
  if timeout 60 "$py" "$kit/build_model.py" --tiny --fresh --out "$tiny" &&
    { timeout 90 node "$kit/run.mjs" --model "$tiny" --ep webgpu --lengths 37,300,1100 --runs 1 --dump "$tiny/webgpu.json"; true; } &&
    { timeout 60 node "$kit/run.mjs" --model "$tiny" --ep cpu --lengths 37,300,1100 --runs 1 --dump "$tiny/cpu.json"; true; } &&
    timeout 60 "$py" "$kit/check_tiny.py" --model "$tiny" --dump "$tiny/webgpu.json" --dump "$tiny/cpu.json" --tol 2e-2; then
    PEER_TINY_CHECK=passed
  else
    PEER_TINY_CHECK="failed (see peer.log)"
  fi
  stamp "tiny check: $PEER_TINY_CHECK"
fi

stamp "build $model (Llama-3.2-1B shape, fp16, random weights)"
if [ ! -f "$model/model.onnx" ] || [ "${PEER_REBUILD:-0}" = 1 ]; then
  timeout 180 "$py" "$kit/build_model.py" --out "$model" || { echo "gpu-run.sh: build_model.py failed"; exit 1; }
fi

# shellcheck disable=SC2086
args=(--model "$model" --ep webgpu --lengths "$lengths" --runs "$runs" --budget-s "$budget" --json "$out/peer.json" ${PEER_EXTRA:-})
stamp "run.mjs ${args[*]}"
start=$SECONDS
timeout -k 10 "$run_timeout" node "$kit/run.mjs" "${args[@]}"
rc=$?
left=$((run_timeout - (SECONDS - start)))
if [ $rc -ne 0 ] && [ $rc -ne 2 ] && [ $left -gt 60 ]; then
  stamp "run.mjs exited with $rc; once more with --resume for the lengths not yet recorded (${left} s left)"
  timeout -k 10 "$left" node "$kit/run.mjs" "${args[@]}" --resume
  rc=$?
fi
stamp "done (run.mjs exit $rc)"
node -e '
const d = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const want = process.argv[2].split(",").map((s) => /k$/i.test(s) ? parseInt(s) * 1024 : parseInt(s));
const have = new Set(d.rows.map((r) => r.shape.tokens));
const miss = want.filter((n) => !have.has(n));
if (miss.length) { console.log("gpu-run.sh: no row for " + miss.join(", ")); process.exit(1); }
' "$out/peer.json" "$lengths"
