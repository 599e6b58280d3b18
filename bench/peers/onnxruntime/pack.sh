#!/usr/bin/env bash
# Packs what the GPU machine needs to run the ONNX Runtime WebGPU peer without npm into
# bench/peers/onnxruntime/kit/ (git-ignored; carry it to the device machine):
#
#   ort-node.tar.xz   onnxruntime-node's JS (dist/*.js), onnxruntime-common's CommonJS build,
#                     the linux-x64 N-API binding and libonnxruntime.so.1 (WebGPU EP, Dawn inside),
#                     as a node_modules tree, xz -9e
#   enter.sh          `source kit/enter.sh`: unpacks that into /tmp/ort-peer, sets ORT_NODE_DIR
#   build_model.py, run.mjs, check_tiny.py, MANIFEST.txt
#
# Run here (x86-64 Linux) after `ONNXRUNTIME_NODE_INSTALL=skip npm install` in this folder.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
nm=$here/node_modules
kit=$here/kit
[ -f "$nm/onnxruntime-node/package.json" ] || {
  echo "pack.sh: no $nm/onnxruntime-node; run: cd $here && ONNXRUNTIME_NODE_INSTALL=skip npm install" >&2
  exit 1
}
ver=$(node -p "require('$nm/onnxruntime-node/package.json').version")
want=$(node -p "require('$here/package.json').dependencies['onnxruntime-node']")
[ "$ver" = "$want" ] || { echo "pack.sh: installed onnxruntime-node $ver, package.json wants $want" >&2; exit 1; }
bin=bin/napi-v6/linux/x64
for f in onnxruntime_binding.node libonnxruntime.so.1; do
  [ -f "$nm/onnxruntime-node/$bin/$f" ] || { echo "pack.sh: missing $bin/$f" >&2; exit 1; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
m=$stage/node_modules
mkdir -p "$m/onnxruntime-node/dist" "$m/onnxruntime-node/$bin" "$m/onnxruntime-common/dist"
cp "$nm/onnxruntime-node/package.json" "$m/onnxruntime-node/"
cp "$nm"/onnxruntime-node/dist/*.js "$m/onnxruntime-node/dist/"
cp "$nm/onnxruntime-node/$bin/onnxruntime_binding.node" "$nm/onnxruntime-node/$bin/libonnxruntime.so.1" "$m/onnxruntime-node/$bin/"
cp "$nm/onnxruntime-common/package.json" "$m/onnxruntime-common/"
cp -r "$nm/onnxruntime-common/dist/cjs" "$m/onnxruntime-common/dist/"
find "$m/onnxruntime-common/dist" -type f ! -name '*.js' ! -name package.json -delete
# onnxruntime-node's JS needs only onnxruntime-common (adm-zip/global-agent serve its install script)
if grep -h -o "require(['\"][^'\"]*['\"])" "$m"/onnxruntime-node/dist/*.js | grep -v -E "onnxruntime-common|\./|\.\./|worker_threads" ; then
  echo "pack.sh: onnxruntime-node's dist requires something not packed (above)" >&2
  exit 1
fi

rm -rf "$kit"
mkdir -p "$kit"
echo "pack.sh: compressing onnxruntime-node $ver (xz -9e -T2; about a minute) ..." >&2
tar -C "$stage" -cf - node_modules | xz -9e -T2 > "$kit/ort-node.tar.xz"
cp "$here/enter.sh" "$here/build_model.py" "$here/run.mjs" "$here/check_tiny.py" "$kit/"
{
  echo "onnxruntime-node $ver (npm), linux-x64, WebGPU EP bundled; packed $(date -u +%FT%TZ)"
  (cd "$stage" && find node_modules -type f | sort | xargs sha256sum)
  (cd "$kit" && sha256sum ort-node.tar.xz enter.sh build_model.py run.mjs check_tiny.py)
} > "$kit/MANIFEST.txt"
du -sb "$kit" | awk '{printf "pack.sh: kit is %.1f MB (%d bytes): ", $1/1e6, $1}' >&2
ls "$kit" | tr '\n' ' ' >&2
echo >&2
