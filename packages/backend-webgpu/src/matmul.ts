/**
 * Tiled, register-blocked matmul: a 16x16 workgroup computes a 64x64 tile of C, each thread a 4x4
 * block, staging 16-deep slices of op(A) and op(B) in workgroup memory. Transposes are
 * compile-time specialisations (only the tile loads change); shapes, alpha and beta are uniforms.
 */
import { uniformLayout } from './uniforms.js';
import { storage, uniform } from './wgsl.js';

export const TILE = 64;
const DEPTH = 16;

export const matmulParams = uniformLayout([
  ['m', 'u32'],
  ['n', 'u32'],
  ['k', 'u32'],
  ['alpha', 'f32'],
  ['beta', 'f32'],
] as const);

export function matmulKey(transA: boolean, transB: boolean): string {
  return `matmul:${transA ? 't' : 'n'}${transB ? 't' : 'n'}:tile${TILE}x${TILE}x${DEPTH}`;
}

export function matmulSource(transA: boolean, transB: boolean): string {
  // Each thread loads 4 elements of each tile; the loop index runs along the stored rows so that
  // neighbouring threads read neighbouring addresses whatever the transpose.
  const loadA = transA
    ? `let ii = e % ${TILE}u; let tt = e / ${TILE}u;`
    : `let ii = e / ${DEPTH}u; let tt = e % ${DEPTH}u;`;
  const idxA = transA ? 'gt * p.m + gi' : 'gi * p.k + gt';
  const loadB = transB
    ? `let jj = e / ${DEPTH}u; let ut = e % ${DEPTH}u;`
    : `let jj = e % ${TILE}u; let ut = e / ${TILE}u;`;
  const idxB = transB ? 'gj * p.k + gu' : 'gu * p.n + gj';
  return `
${matmulParams.struct('Params')}
${storage(0, 'ma')}
${storage(1, 'mb')}
${storage(2, 'mc', 'f32', true)}
${uniform(3, 'p', 'Params')}
var<workgroup> As: array<f32, ${TILE * DEPTH}>;
var<workgroup> Bs: array<f32, ${TILE * DEPTH}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l3: vec3<u32>) {
  let tx = l3.x;
  let ty = l3.y;
  let tid = ty * 16u + tx;
  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  var acc: array<vec4<f32>, 4>;
  for (var t0 = 0u; t0 < p.k; t0 = t0 + ${DEPTH}u) {
    for (var l = 0u; l < 4u; l = l + 1u) {
      let e = tid + l * 256u;
      ${loadA}
      let gi = row0 + ii;
      let gt = t0 + tt;
      var va = 0.0;
      if (gi < p.m && gt < p.k) { va = ma[${idxA}]; }
      As[tt * ${TILE}u + ii] = va;
      ${loadB}
      let gj = col0 + jj;
      let gu = t0 + ut;
      var vb = 0.0;
      if (gj < p.n && gu < p.k) { vb = mb[${idxB}]; }
      Bs[ut * ${TILE}u + jj] = vb;
    }
    workgroupBarrier();
    for (var t = 0u; t < ${DEPTH}u; t = t + 1u) {
      let ao = t * ${TILE}u + ty * 4u;
      let bo = t * ${TILE}u + tx * 4u;
      let b4 = vec4<f32>(Bs[bo], Bs[bo + 1u], Bs[bo + 2u], Bs[bo + 3u]);
      acc[0] = fma(vec4<f32>(As[ao]), b4, acc[0]);
      acc[1] = fma(vec4<f32>(As[ao + 1u]), b4, acc[1]);
      acc[2] = fma(vec4<f32>(As[ao + 2u]), b4, acc[2]);
      acc[3] = fma(vec4<f32>(As[ao + 3u]), b4, acc[3]);
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < 4u; r = r + 1u) {
    let gi = row0 + ty * 4u + r;
    if (gi >= p.m) { break; }
    for (var c = 0u; c < 4u; c = c + 1u) {
      let gj = col0 + tx * 4u + c;
      if (gj >= p.n) { break; }
      let idx = gi * p.n + gj;
      var v = p.alpha * acc[r][c];
      // beta 0 ignores the old contents, even NaN.
      if (p.beta != 0.0) { v = v + p.beta * mc[idx]; }
      mc[idx] = v;
    }
  }
}
`;
}
