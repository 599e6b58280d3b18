# Sourced from the kit that pack.sh writes: `source bench/peers/onnxruntime/kit/enter.sh`.
# Unpacks onnxruntime-node (JS + linux-x64 binding + libonnxruntime.so.1, WebGPU EP inside)
# into /tmp/ort-peer once and exports ORT_NODE_DIR, which run.mjs requires it from, so no
# npm or node_modules is needed. WebGPU also needs the Vulkan loader and a driver ICD: on the
# GPU machine `source .gpu/enter.sh` first (it installs libvulkan1 and sets VK_DRIVER_FILES);
# here, VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json gives SwiftShader.
_ort_kit=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_ort_dst=${ORT_PEER_DIR:-/tmp/ort-peer}
if [ ! -f "$_ort_dst/.unpacked" ] || [ "$_ort_dst/.unpacked" -ot "$_ort_kit/ort-node.tar.xz" ]; then
  rm -rf "$_ort_dst" && mkdir -p "$_ort_dst" &&
    xz -dc "$_ort_kit/ort-node.tar.xz" | tar -C "$_ort_dst" -xf - &&
    touch "$_ort_dst/.unpacked"
fi
export ORT_NODE_DIR=$_ort_dst/node_modules/onnxruntime-node
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
if [ -f "$ORT_NODE_DIR/bin/napi-v6/linux/x64/libonnxruntime.so.1" ]; then
  echo "ort-peer: onnxruntime-node $(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' "$ORT_NODE_DIR/package.json" | head -1) at $ORT_NODE_DIR" >&2
else
  echo "ort-peer: unpacking $_ort_kit/ort-node.tar.xz into $_ort_dst failed" >&2
fi
unset _ort_kit _ort_dst
