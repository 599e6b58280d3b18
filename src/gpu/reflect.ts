/**
 * Binding and uniform layouts read from the WGSL itself through wgsl_reflect, so that no kernel
 * restates its bindings by hand. Resources are bound by their WGSL variable names.
 */
import { WgslReflect, ResourceType, type MemberInfo, type VariableInfo } from 'wgsl_reflect/wgsl_reflect.module.js';
import { ShapeError } from './errors.ts';

export type BindingKind = 'uniform' | 'storage' | 'read-only-storage';

export interface BindingInfo {
  name: string;
  binding: number;
  kind: BindingKind;
}

export type ScalarType = 'f32' | 'i32' | 'u32';

export interface UniformMember {
  name: string;
  offset: number; // in bytes
  scalar: ScalarType;
  count: number; // 1 for scalars, n for vecN
}

export interface UniformLayout {
  name: string;
  size: number; // in bytes, rounded up to 16
  members: UniformMember[];
}

export interface EntryReflection {
  bindings: BindingInfo[];
  uniform?: UniformLayout;
  workgroupSize: [number, number, number] | null;
}

/** Reflects one compute entry point. Throws with the parser's message if the WGSL does not parse. */
export function reflectEntry(code: string, entryPoint: string): EntryReflection {
  const reflect = new WgslReflect(code);
  const fn = reflect.entry.compute.find((f) => f.name === entryPoint);
  if (!fn) throw new Error(`no @compute entry point named ${entryPoint}`);
  const bindings: BindingInfo[] = [];
  let uniform: UniformLayout | undefined;
  const seen = new Set<number>();
  const resources: VariableInfo[] = fn.resources.length ? fn.resources : reflect.getBindGroups().flat();
  for (const r of resources) {
    if (r.group !== 0) throw new Error(`binding ${r.name} is in group ${r.group}; kernels use group 0 only`);
    if (seen.has(r.binding)) continue;
    seen.add(r.binding);
    if (r.resourceType === ResourceType.Uniform) {
      bindings.push({ name: r.name, binding: r.binding, kind: 'uniform' });
      if (uniform) throw new Error(`more than one uniform binding (${uniform.name}, ${r.name}); kernels take one Params struct`);
      uniform = uniformLayout(r);
    } else if (r.resourceType === ResourceType.Storage) {
      bindings.push({ name: r.name, binding: r.binding, kind: r.access === 'read' ? 'read-only-storage' : 'storage' });
    } else {
      throw new Error(`binding ${r.name}: only storage and uniform buffers are supported`);
    }
  }
  bindings.sort((a, b) => a.binding - b.binding);
  return { bindings, uniform, workgroupSize: fn.workgroupSize };
}

function scalarOf(typeName: string): { scalar: ScalarType; count: number } {
  const m = /^(?:vec([234])<(f32|i32|u32)>|vec([234])([fiu])|(f32|i32|u32))$/.exec(typeName.replace(/\s/g, ''));
  if (!m) throw new Error(`uniform member type ${typeName} is not supported (use f32, i32, u32 or vecN of them)`);
  if (m[5]) return { scalar: m[5] as ScalarType, count: 1 };
  if (m[1]) return { scalar: m[2] as ScalarType, count: Number(m[1]) };
  const s = m[4] === 'f' ? 'f32' : m[4] === 'i' ? 'i32' : 'u32';
  return { scalar: s, count: Number(m[3]) };
}

function uniformLayout(v: VariableInfo): UniformLayout {
  const members: MemberInfo[] = v.members ?? [];
  return {
    name: v.name,
    size: Math.ceil(Math.max(v.size, 4) / 16) * 16,
    members: members.map((m) => ({ name: m.name, offset: m.offset, ...scalarOf(m.type.getTypeName()) })),
  };
}

export type UniformValues = Readonly<Record<string, number | readonly number[]>>;

/** Packs named values into a uniform struct's bytes. Every member must be given; none may be unknown. */
export function packUniform(layout: UniformLayout, values: UniformValues, kernel: string): Uint8Array {
  const bytes = new Uint8Array(layout.size);
  const view = new DataView(bytes.buffer);
  const known = new Set(layout.members.map((m) => m.name));
  for (const key of Object.keys(values)) {
    if (!known.has(key)) throw new ShapeError(`${kernel}: uniform ${layout.name} has no member "${key}"`);
  }
  for (const m of layout.members) {
    const raw = values[m.name];
    if (raw === undefined) throw new ShapeError(`${kernel}: uniform ${layout.name}.${m.name} was not given`);
    const list = typeof raw === 'number' ? [raw] : raw;
    if (list.length !== m.count) throw new ShapeError(`${kernel}: ${layout.name}.${m.name} wants ${m.count} values, got ${list.length}`);
    for (let i = 0; i < m.count; i++) {
      const at = m.offset + 4 * i;
      const x = list[i]!;
      if (m.scalar === 'f32') view.setFloat32(at, x, true);
      else {
        if (!Number.isInteger(x)) throw new ShapeError(`${kernel}: ${layout.name}.${m.name} must be an integer, got ${x}`);
        if (m.scalar === 'u32') {
          if (x < 0 || x > 0xffffffff) throw new ShapeError(`${kernel}: ${layout.name}.${m.name}=${x} does not fit u32`);
          view.setUint32(at, x, true);
        } else {
          if (x < -0x80000000 || x > 0x7fffffff) throw new ShapeError(`${kernel}: ${layout.name}.${m.name}=${x} does not fit i32`);
          view.setInt32(at, x, true);
        }
      }
    }
  }
  return bytes;
}
