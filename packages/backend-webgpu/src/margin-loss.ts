/**
 * The fused classifier kernel: one workgroup per row. softmax-ce makes two passes over the row
 * (online max/sum, then loss and gradient); sigmoid-ova makes one. Logits are recomputed rather
 * than stored, so nothing beyond the gradient buffer is ever written.
 */
import type { MarginLossParams, MarginTransform, Reducer } from '@fr/core';
import { uniformLayout } from './uniforms.js';
import { HALF_BITS, MATH, readHalf, reductions, storage, uniform, writeHalf } from './wgsl.js';

export const marginParams = uniformLayout([
  ['rows', 'u32'],
  ['cols', 'u32'],
  ['class_offset', 'i32'],
  ['has_ctx', 'u32'],
  ['has_bias', 'u32'],
  ['pos_w', 'f32'],
  ['neg_w', 'f32'],
  ['scale', 'f32'],
  ['nan_bits', 'u32'],
  ['has_glse', 'u32'],
  ['has_rlse', 'u32'],
  ['ctx_at', 'u32'],
  ['lse_at', 'u32'],
  ['has_cgrad', 'u32'],
] as const);

/** Element offsets of the optional inputs in the packed auxiliary buffer. */
export function marginAuxLayout(rows: number) {
  return { bias: 0, ctx: 4, lse: 4 + rows, bytes: (4 + 2 * rows) * 4 };
}

export function transformUniformStruct(t: MarginTransform): string {
  const names = Object.keys(t.uniforms);
  const fields = names.length > 0 ? names.map((n) => `  ${n}: f32,`) : ['  fr_unused: f32,'];
  return `struct FrUniforms {\n${fields.join('\n')}\n}`;
}

export function packTransformUniforms(t: MarginTransform): ArrayBuffer {
  const values = Object.values(t.uniforms);
  const out = new Float32Array(Math.max(4, Math.ceil(values.length / 4) * 4));
  values.forEach((v, i) => (out[i] = v));
  return out.buffer;
}

/** Which of the two row-major matrices are float16 buffers (two values per 32-bit word). */
export interface MarginStorage {
  halfLogits: boolean;
  halfGrad: boolean;
}

const FLOAT32_MATRICES: MarginStorage = { halfLogits: false, halfGrad: false };

export function marginLossKey(t: MarginTransform, reducer: Reducer, wg: number, h: MarginStorage = FLOAT32_MATRICES): string {
  const half = `${h.halfLogits ? ':hz' : ''}${h.halfGrad ? ':hg' : ''}`;
  return `marginLoss:${reducer}:${t.key}(${Object.keys(t.uniforms).join(',')})${t.contextGradient ? ':cg' : ''}${half}:wg${wg}`;
}

export function marginLossSource(t: MarginTransform, reducer: Reducer, wg: number, h: MarginStorage = FLOAT32_MATRICES): string {
  const z = (index: string) => (h.halfLogits ? readHalf('fr_z', index) : `fr_z[${index}]`);
  // Threads of a row write neighbouring elements: float16 pairs are written through atomics.
  const setGrad = (value: string) => (h.halfGrad ? writeHalf('fr_grad', 'base + j', value) : `fr_grad[base + j] = ${value};`);
  // A transform with a context gradient gets an eighth storage binding (the per-row context
  // gradient) and sums dl * d logit / d context next to the row's other sums; others keep seven.
  const cg = t.contextGradient === true;
  const uniformAt = cg ? 8 : 7;
  const cgAcc = (which: 'target' | 'other') => (cg ? `\n      cg = cg + dl * fr_${which}_context_grad(z, fr_row);` : '');
  const cgWrite = cg ? `
  let cgs = fr_sum(cg, lid);
  if (lid == 0u && fr_p.has_cgrad != 0u) { fr_row_ctx_grad[fr_r] = fr_p.scale * cgs; }` : '';
  const prelude = `
const FR_PI: f32 = 3.14159265358979;
const FR_NEG_BIG: f32 = -3.402823e38;
struct FrRow {
  target_z: f32,
  context: f32,
}
${transformUniformStruct(t)}
${marginParams.struct('FrParams')}
${storage(0, 'fr_z', h.halfLogits ? 'u32' : 'f32')}
${storage(1, 'fr_labels', 'i32')}
${storage(2, 'fr_grad', h.halfGrad ? 'atomic<u32>' : 'f32', true)}
${storage(3, 'fr_row_loss', 'f32', true)}
${storage(4, 'fr_row_logit_grad', 'f32', true)}
${storage(5, 'fr_aux')}
${storage(6, 'fr_row_lse', 'f32', true)}
${cg ? storage(7, 'fr_row_ctx_grad', 'f32', true) : ''}
${uniform(uniformAt, 'fr_p', 'FrParams')}
${uniform(uniformAt + 1, 'u', 'FrUniforms')}
${MATH}
${h.halfGrad ? HALF_BITS : ''}
${reductions(wg, 2)}
var<workgroup> fr_mx: array<f32, ${wg}>;
var<workgroup> fr_sm: array<f32, ${wg}>;
`;
  const header = `
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let fr_r = wid.y * nwg.x + wid.x;
  if (fr_r >= fr_p.rows) { return; }
  let cols = fr_p.cols;
  let base = fr_r * cols;
  let y = fr_labels[fr_r] - fr_p.class_offset;
  let has_t = y >= 0 && y < i32(cols);
  var yu = cols;
  if (has_t) { yu = u32(y); }
  var fr_row: FrRow;
  // NaN through a runtime bitcast: a constant NaN is a shader-creation error.
  fr_row.target_z = bitcast<f32>(fr_p.nan_bits);
  if (has_t) { fr_row.target_z = ${z('base + yu')}; }
  fr_row.context = 0.0;
  if (fr_p.has_ctx != 0u) { fr_row.context = fr_aux[fr_p.ctx_at + fr_r]; }
  var bias = 0.0;
  if (fr_p.has_bias != 0u) { bias = fr_aux[0]; }
`;
  const softmax = `
  var mx = FR_NEG_BIG;
  var sm = 0.0;
  for (var j = lid; j < cols; j = j + ${wg}u) {
    let z = ${z('base + j')};
    var l: f32;
    if (j == yu) { l = fr_target(z, fr_row) + bias; } else { l = fr_other(z, fr_row) + bias; }
    if (l > mx) { sm = sm * exp(mx - l) + 1.0; mx = l; } else { sm = sm + exp(l - mx); }
  }
  fr_mx[lid] = mx;
  fr_sm[lid] = sm;
  workgroupBarrier();
  for (var s = ${Math.floor(wg / 2)}u; s > 0u; s = s >> 1u) {
    if (lid < s) {
      let m1 = fr_mx[lid];
      let m2 = fr_mx[lid + s];
      let m = max(m1, m2);
      fr_sm[lid] = fr_sm[lid] * exp(m1 - m) + fr_sm[lid + s] * exp(m2 - m);
      fr_mx[lid] = m;
    }
    workgroupBarrier();
  }
  let local_lse = fr_mx[0] + log(fr_sm[0]);
  if (lid == 0u && fr_p.has_rlse != 0u) { fr_row_lse[fr_r] = local_lse; }
  // A sharded head normalises with the log-sum-exp over every shard.
  var lse = local_lse;
  if (fr_p.has_glse != 0u) { lse = fr_aux[fr_p.lse_at + fr_r]; }
  var gsum = 0.0;
  var tlogit = 0.0;
  var cg = 0.0;
  for (var j = lid; j < cols; j = j + ${wg}u) {
    let z = ${z('base + j')};
    var dl: f32;
    var slope: f32;
    if (j == yu) {
      let l = fr_target(z, fr_row) + bias;
      slope = fr_target_grad(z, fr_row);
      dl = exp(l - lse) - 1.0;
      tlogit = l;${cgAcc('target')}
    } else {
      let l = fr_other(z, fr_row) + bias;
      slope = fr_other_grad(z, fr_row);
      dl = exp(l - lse);${cgAcc('other')}
    }
    gsum = gsum + dl;
    ${setGrad('fr_p.scale * dl * slope')}
  }
  let sums = fr_sum2(gsum, tlogit, lid);${cgWrite}
  if (lid == 0u) {
    // With a global LSE only the shard holding the target counts the row's loss.
    var loss = select(lse, 0.0, fr_p.has_glse != 0u);
    if (has_t) { loss = lse - sums.y; }
    fr_row_loss[fr_r] = fr_p.scale * loss;
    fr_row_logit_grad[fr_r] = fr_p.scale * sums.x;
  }
}
`;
  const sigmoid = `
  var loss = 0.0;
  var gsum = 0.0;
  var cg = 0.0;
  for (var j = lid; j < cols; j = j + ${wg}u) {
    let z = ${z('base + j')};
    var dl: f32;
    var slope: f32;
    if (j == yu) {
      let l = fr_target(z, fr_row) + bias;
      slope = fr_target_grad(z, fr_row);
      loss = loss + fr_p.pos_w * fr_softplus(-l);
      dl = -fr_p.pos_w * fr_sigmoid(-l);${cgAcc('target')}
    } else {
      let l = fr_other(z, fr_row) + bias;
      slope = fr_other_grad(z, fr_row);
      loss = loss + fr_p.neg_w * fr_softplus(l);
      dl = fr_p.neg_w * fr_sigmoid(l);${cgAcc('other')}
    }
    gsum = gsum + dl;
    ${setGrad('fr_p.scale * dl * slope')}
  }
  let sums = fr_sum2(loss, gsum, lid);${cgWrite}
  if (lid == 0u) {
    fr_row_loss[fr_r] = fr_p.scale * sums.x;
    fr_row_logit_grad[fr_r] = fr_p.scale * sums.y;
  }
}
`;
  return `${prelude}\n// ---- transform ${t.key}\n${t.wgsl}\n// ----\n${header}${reducer === 'softmax-ce' ? softmax : sigmoid}`;
}

export function marginLossUniforms<B>(p: MarginLossParams<B>, o: { globalLse: boolean; rowLse: boolean; rows: number; contextGrad?: boolean }): ArrayBuffer {
  const aux = marginAuxLayout(o.rows);
  return marginParams.pack({
    rows: p.rows,
    cols: p.cols,
    class_offset: p.classOffset,
    has_ctx: p.rowContext !== null,
    has_bias: p.bias !== null,
    pos_w: p.positiveWeight,
    neg_w: p.negativeWeight,
    scale: p.scale,
    nan_bits: 0x7fc00000,
    has_glse: o.globalLse,
    has_rlse: o.rowLse,
    ctx_at: aux.ctx,
    lse_at: aux.lse,
    has_cgrad: o.contextGrad ?? false,
  });
}
