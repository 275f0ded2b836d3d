/** Small WGSL building blocks shared by the kernels. */

/** A storage binding, read-only unless `write`. */
export function storage(binding: number, name: string, type: 'f32' | 'i32' | 'u32' | 'atomic<u32>' = 'f32', write = false): string {
  return `@group(0) @binding(${binding}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${type}>;`;
}

/**
 * The binary16 bits of an f32. WGSL's pack2x16float leaves values outside the finite float16 range
 * indeterminate, so NaN, overflow to infinity and the top rounding band (to 65504) are set from the
 * bits here; everything else is pack2x16float's rounding.
 */
export const HALF_BITS = /* wgsl */ `
fn fr_half_bits(x: f32) -> u32 {
  let bits = bitcast<u32>(x);
  let sign = (bits >> 16u) & 0x8000u;
  let mag = bits & 0x7fffffffu;
  if (mag > 0x7f800000u) { return 0x7e00u; }
  if (mag >= 0x477ff000u) { return sign | 0x7c00u; }
  if (mag > 0x477fe000u) { return sign | 0x7bffu; }
  return pack2x16float(vec2<f32>(x, 0.0)) & 0xffffu;
}
`;

/** The WGSL expression reading element `index` of a float16 buffer bound as 32-bit words (two values each). */
export function readHalf(buffer: string, index: string): string {
  return `unpack2x16float(${buffer}[(${index}) >> 1u])[(${index}) & 1u]`;
}

/**
 * A WGSL statement storing `value` rounded to float16 as element `index` of a buffer bound as
 * `array<atomic<u32>>`: the element's half of the word is cleared, then set, by atomics, so the
 * other half may be written by another invocation at the same time (odd row lengths, strided
 * threads). Needs HALF_BITS.
 */
export function writeHalf(buffer: string, index: string, value: string): string {
  return `{ let fr_w = (${index}) >> 1u; let fr_sh = ((${index}) & 1u) * 16u; atomicAnd(&${buffer}[fr_w], ~(0xffffu << fr_sh)); atomicOr(&${buffer}[fr_w], fr_half_bits(${value}) << fr_sh); }`;
}

/** Parses a binding spec: "name", "name!" (written), "name:i32" or "name:u32" (float16 pairs). */
export function parseBinding(spec: string): { name: string; type: 'f32' | 'i32' | 'u32'; write: boolean } {
  const write = spec.endsWith('!');
  const [name, type] = spec.replace('!', '').split(':');
  return { name, type: type === 'i32' || type === 'u32' ? type : 'f32', write };
}

export function uniform(binding: number, name: string, struct: string): string {
  return `@group(0) @binding(${binding}) var<uniform> ${name}: ${struct};`;
}

/** Entry point whose `gid` is a flat invocation index over a (possibly 2-D) grid of workgroups. */
export function flatMain(wg: number, body: string): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let gid = (wid.y * nwg.x + wid.x) * ${wg}u + lid;
${body}
}`;
}

/** Entry point with one workgroup per item (`grp`), threads `lid` in [0, WG). */
export function groupMain(wg: number, body: string): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let grp = wid.y * nwg.x + wid.x;
${body}
}`;
}

/**
 * Workgroup tree reductions over `count` shared arrays. Call from uniform control flow; the
 * result is returned to every thread. WG must be a power of two.
 */
export function reductions(wg: number, count = 1): string {
  let s = '';
  for (let r = 0; r < count; r++) s += `var<workgroup> fr_red${r}: array<f32, ${wg}>;\n`;
  s += `fn fr_sum(v: f32, lid: u32) -> f32 {
  fr_red0[lid] = v;
  workgroupBarrier();
  for (var s = ${Math.floor(wg / 2)}u; s > 0u; s = s >> 1u) {
    if (lid < s) { fr_red0[lid] = fr_red0[lid] + fr_red0[lid + s]; }
    workgroupBarrier();
  }
  let r = fr_red0[0];
  workgroupBarrier();
  return r;
}
`;
  if (count >= 2) {
    s += `fn fr_sum2(a: f32, b: f32, lid: u32) -> vec2<f32> {
  fr_red0[lid] = a;
  fr_red1[lid] = b;
  workgroupBarrier();
  for (var s = ${Math.floor(wg / 2)}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      fr_red0[lid] = fr_red0[lid] + fr_red0[lid + s];
      fr_red1[lid] = fr_red1[lid] + fr_red1[lid + s];
    }
    workgroupBarrier();
  }
  let r = vec2<f32>(fr_red0[0], fr_red1[0]);
  workgroupBarrier();
  return r;
}
`;
  }
  return s;
}

/** Numerically careful helpers used by several kernels. */
export const MATH = /* wgsl */ `
fn fr_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}
fn fr_log1p(x: f32) -> f32 {
  // log(1 + x) with the rounding of 1 + x compensated (Goldberg): exact enough near 0.
  let u = 1.0 + x;
  if (u == 1.0) { return x; }
  return log(u) * x / (u - 1.0);
}
fn fr_softplus(x: f32) -> f32 {
  return max(x, 0.0) + fr_log1p(exp(-abs(x)));
}
fn fr_tanh(x: f32) -> f32 {
  // Driver tanh can overflow to NaN for large |x|; small |x| needs the builtin to avoid cancellation.
  if (abs(x) < 0.5) { return tanh(x); }
  let e = exp(-2.0 * abs(x));
  let t = (1.0 - e) / (1.0 + e);
  return select(-t, t, x >= 0.0);
}
`;
