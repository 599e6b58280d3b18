#!/usr/bin/env bash
# The README's main job (`npm start`): sets up the embedded default (a small random-weight Llama with
# the real Llama 3 tokenizer, and the bundled long document with its question), then runs the whole
# pipeline through the CLI: tokenize, chunked prefill with MInference attention, decode, report.
# On a machine without a GPU it runs on SwiftShader (Debian's chromium package) with a short
# document, since the software adapter computes about 1 GFLOP/s; set DOCUMENT=path to override.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsx scripts/setup-default.ts
[ -f dist/cli.mjs ] || node scripts/build-cli.mjs
question=$(node -e "process.stdout.write(JSON.parse(require('fs').readFileSync('demo/assets/default-document.json', 'utf8')).question)")
document=${DOCUMENT:-demo/assets/default-document.txt}
swiftshader=/usr/lib/chromium/vk_swiftshader_icd.json
if [ -z "${VK_ICD_FILENAMES:-}" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1 && [ -f "$swiftshader" ]; then
  echo "No hardware Vulkan driver found: running on SwiftShader (CPU) with a short document." >&2
  export VK_ICD_FILENAMES=$swiftshader
  if [ -z "${DOCUMENT:-}" ]; then
    document=.fixtures/short-document.txt
    [ -f "$document" ] || npx tsx scripts/make-document.ts --out "$document" --words 300 --depth 0.5 >/dev/null
    question=$(node -e "process.stdout.write(JSON.parse(require('fs').readFileSync('.fixtures/short-document.json', 'utf8')).question)")
  fi
fi
exec node dist/cli.mjs run --model .fixtures/default-model --document "$document" --question "$question" --max-new-tokens "${MAX_NEW_TOKENS:-12}" "$@"
