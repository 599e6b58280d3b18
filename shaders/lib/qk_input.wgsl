// The q and k inputs of the index estimators (bindings 0 and 1), in the storage type chosen by DT
// (0: f32, 1: packed f16 pairs, 2: packed bf16 pairs), read element by element as f32 through
// load_q(i) / load_k(i). Needs lib/packing.wgsl for the packed types.
#if DT == 0
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
fn load_q(i: u32) -> f32 { return q[i]; }
fn load_k(i: u32) -> f32 { return k[i]; }
#elif DT == 1
@group(0) @binding(0) var<storage, read> q: array<u32>;
@group(0) @binding(1) var<storage, read> k: array<u32>;
fn load_q(i: u32) -> f32 { return f16_at(q[i >> 1u], i & 1u); }
fn load_k(i: u32) -> f32 { return f16_at(k[i >> 1u], i & 1u); }
#else
@group(0) @binding(0) var<storage, read> q: array<u32>;
@group(0) @binding(1) var<storage, read> k: array<u32>;
fn load_q(i: u32) -> f32 { return bf16_at(q[i >> 1u], i & 1u); }
fn load_k(i: u32) -> f32 { return bf16_at(k[i >> 1u], i & 1u); }
#endif
