#!/usr/bin/env bash
# The README's main job (`npm start`): the embedded default model (models/needle-reader, trained by
# tools/train/ to read English and answer questions about facts in it) reads the bundled document
# (held-out text with planted facts, demo/assets/default-document.*, 40K tokens) and answers its
# question, once with dense and once with sparse attention (MInference's Vertical-Slash on every
# head), printing both answers, both prefill times, the speedup and the share of attention computed.
# On a machine without a GPU it runs on SwiftShader (Debian's chromium package) with the 512-token
# version of the document (a software adapter computes about 1 GFLOP/s), and with a Vertical-Slash
# config small enough to skip keys at that length. DOCUMENT=path (+ QUESTION=text) overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli.mjs ] || node scripts/build-cli.mjs
doc=demo/assets/default-document
extra=(--experimental)
swiftshader=/usr/lib/chromium/vk_swiftshader_icd.json
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1 && [ -f "$swiftshader" ]; then
  echo "No hardware Vulkan driver found: running on SwiftShader (CPU) with the short document." >&2
  export VK_ICD_FILENAMES=$swiftshader
  doc=demo/assets/short-document
  extra=(--dense-below 0 --pattern '["vertical_and_slash", 64, 128]')
fi
meta() { node -e "process.stdout.write(String(JSON.parse(require('fs').readFileSync('$doc.json', 'utf8')).$1))"; }
document=${DOCUMENT:-$doc.txt}
question=${QUESTION:-$(meta question)}
expect=()
[ -n "${DOCUMENT:-}" ] || expect=(--expect "$(meta expectedValue)")
exec node dist/cli.mjs run --model models/needle-reader --document "$document" --question "$question" \
  --compare --max-new-tokens "${MAX_NEW_TOKENS:-32}" "${expect[@]}" "${extra[@]}" "$@"
