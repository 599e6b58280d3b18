#!/usr/bin/env bash
# The README's test command (`npm test`): types, then the kernel and unit tests in Node (Dawn),
# Deno and headless Chromium. On a machine without a GPU, Node's Dawn uses SwiftShader from
# Debian's chromium package and Deno uses Mesa's lavapipe (mesa-vulkan-drivers).
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/embed-shaders.mjs
node scripts/build-cli.mjs
node scripts/build-lib.mjs
swiftshader=/usr/lib/chromium/vk_swiftshader_icd.json
if [ -z "${VK_ICD_FILENAMES:-}" ] && [ -f "$swiftshader" ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  dawn_icd=$swiftshader
else
  dawn_icd=${VK_ICD_FILENAMES:-}
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
echo "== typecheck"; npx tsc -p .
echo "== node (dawn)"; VK_ICD_FILENAMES=$dawn_icd npx vitest run
echo "== deno"; npx deno test -A --no-check test/deno/
echo "== chromium"; npx vitest run -c e2e/vitest.config.ts
