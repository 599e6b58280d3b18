#!/usr/bin/env bash
# Trains needle-reader on the GPU machine: one command, seeded (tools/train/README.md).
#
#   bash tools/train/run.sh OUT_DIR [RECIPES_FILE]
#
# prepares the tokenizer and the tokenized corpus once, fits every recipe of RECIPES_FILE in
# parallel on the one GPU (default: tools/train/recipes.txt, whose first line is the shipped
# model's recipe), evaluates each saved model at 1K-128K tokens, and packs each recipe's model,
# training log and evaluation into OUT_DIR/<recipe>.tar.gz (split into 15 MB parts if larger).
# Environment: MINUTES (training time per recipe, default 7), WORK (scratch, default /tmp/needle-work),
# TOKENIZER (reuse this tokenizer.json: for recipes that continue a model with --init),
# EVAL_COUNT (needle documents per length in the final evaluation, default 16).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: run.sh OUT_DIR [RECIPES_FILE]}
recipes=${2:-tools/train/recipes.txt}
work=${WORK:-/tmp/needle-work}
minutes=${MINUTES:-7}
mkdir -p "$out" "$work"
export PYTHONUNBUFFERED=1
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__, torch.cuda.get_device_name())"
[ -f .train-data/brown-train.txt ] || { echo "no .train-data/brown-train.txt: run 'npx tsx scripts/brown-corpus.ts' first and carry .train-data" >&2; exit 2; }
python3 tools/train/train.py prepare --text .train-data/brown-train.txt --heldout demo/assets/brown-heldout.txt --work "$work" ${TOKENIZER:+--tokenizer "$TOKENIZER"}
names=()
while read -r name args; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  names+=("$name")
  # shellcheck disable=SC2086
  python3 tools/train/train.py fit --work "$work" --out "$work/$name" --minutes "$minutes" $args > "$work/$name.log" 2>&1 &
done < "$recipes"
wait
for name in "${names[@]}"; do
  tail -n 3 "$work/$name.log"
  if [ -d "$work/$name/model" ]; then
    timeout 120 python3 tools/train/train.py eval --work "$work" --model "$work/$name/model" --count "${EVAL_COUNT:-16}" --json "$work/$name/eval.json" || true
  fi
  cp "$work/$name.log" "$work/$name/fit.log" 2>/dev/null || true
  tar czf "$work/$name.tar.gz" -C "$work" "$name"
  if [ "$(stat -c %s "$work/$name.tar.gz")" -gt 15000000 ]; then
    split -b 15000000 -d "$work/$name.tar.gz" "$out/$name.tar.gz.part"
  else
    cp "$work/$name.tar.gz" "$out/"
  fi
done
ls -la "$out"
