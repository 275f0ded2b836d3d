/**
 * Tiled, register-blocked matmul: a 16x16 workgroup computes a 64x64 tile of C, each thread a 4x4
 * block, staging 16-deep slices of op(A) and op(B) in workgroup memory. Transposes are
 * compile-time specialisations (only the tile loads change); shapes, alpha and beta are uniforms.
 * The z workgroup index walks a batch of independent products whose operands start `sa`, `sb`, `sc`
 * elements apart (0 for a single product, or an operand shared by the whole batch).
 */
import { uniformLayout } from './uniforms.js';
import { HALF_BITS, readHalf, storage, uniform, writeHalf } from './wgsl.js';

/** Which operands are float16 buffers (two values per 32-bit word). */
export interface MatmulStorage {
  halfA: boolean;
  halfB: boolean;
  /** The output: written rounded to float16 through atomics (see writeHalf); beta is 0. */
  halfC: boolean;
}

export const FLOAT32_OPERANDS: MatmulStorage = { halfA: false, halfB: false, halfC: false };

export const TILE = 64;
const DEPTH = 16;

export const matmulParams = uniformLayout([
  ['m', 'u32'],
  ['n', 'u32'],
  ['k', 'u32'],
  ['alpha', 'f32'],
  ['beta', 'f32'],
  ['sa', 'u32'],
  ['sb', 'u32'],
  ['sc', 'u32'],
] as const);

/**
 * Params uniform and the three storage bindings shared by both forms. A float16 operand is bound
 * as 32-bit words holding two values each.
 */
function bindings(h: MatmulStorage): string {
  return [
    matmulParams.struct('Params'),
    storage(0, 'ma', h.halfA ? 'u32' : 'f32'),
    storage(1, 'mb', h.halfB ? 'u32' : 'f32'),
    storage(2, 'mc', h.halfC ? 'atomic<u32>' : 'f32', true),
    uniform(3, 'p', 'Params'),
    h.halfC ? HALF_BITS : '',
  ].join('\n');
}

const readA = (index: string, h: MatmulStorage) => (h.halfA ? readHalf('ma', index) : `ma[${index}]`);
const readB = (index: string, h: MatmulStorage) => (h.halfB ? readHalf('mb', index) : `mb[${index}]`);

/** The statements storing alpha * `acc` as element `idx` of C (beta 0 ignores the old contents, even NaN). */
function storeC(acc: string, h: MatmulStorage): string {
  if (h.halfC) return writeHalf('mc', 'idx', `p.alpha * ${acc}`);
  return `var v = p.alpha * ${acc};
      if (p.beta != 0.0) { v = v + p.beta * mc[idx]; }
      mc[idx] = v;`;
}

const storageKey = (h: MatmulStorage) => `${h.halfA ? ':ha' : ''}${h.halfB ? ':h' : ''}${h.halfC ? ':hc' : ''}`;

export function matmulKey(transA: boolean, transB: boolean, h: MatmulStorage = FLOAT32_OPERANDS): string {
  return `matmul:${transA ? 't' : 'n'}${transB ? 't' : 'n'}${storageKey(h)}:tile${TILE}x${TILE}x${DEPTH}`;
}

export function matmulSource(transA: boolean, transB: boolean, h: MatmulStorage = FLOAT32_OPERANDS): string {
  // Each thread loads 4 elements of each tile; the loop index runs along the stored rows so that
  // neighbouring threads read neighbouring addresses whatever the transpose.
  const loadA = transA
    ? `let ii = e % ${TILE}u; let tt = e / ${TILE}u;`
    : `let ii = e / ${DEPTH}u; let tt = e % ${DEPTH}u;`;
  const idxA = transA ? 'oa + gt * p.m + gi' : 'oa + gi * p.k + gt';
  const loadB = transB
    ? `let jj = e / ${DEPTH}u; let ut = e % ${DEPTH}u;`
    : `let jj = e % ${TILE}u; let ut = e / ${TILE}u;`;
  const idxB = transB ? 'ob + gj * p.k + gu' : 'ob + gu * p.n + gj';
  return `
${bindings(h)}
var<workgroup> As: array<f32, ${TILE * DEPTH}>;
var<workgroup> Bs: array<f32, ${TILE * DEPTH}>;

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l3: vec3<u32>) {
  let tx = l3.x;
  let ty = l3.y;
  let tid = ty * 16u + tx;
  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  let oa = wid.z * p.sa;
  let ob = wid.z * p.sb;
  let oc = wid.z * p.sc;
  var acc: array<vec4<f32>, 4>;
  for (var t0 = 0u; t0 < p.k; t0 = t0 + ${DEPTH}u) {
    for (var l = 0u; l < 4u; l = l + 1u) {
      let e = tid + l * 256u;
      ${loadA}
      let gi = row0 + ii;
      let gt = t0 + tt;
      var va = 0.0;
      if (gi < p.m && gt < p.k) { va = ${readA(idxA, h)}; }
      As[tt * ${TILE}u + ii] = va;
      ${loadB}
      let gj = col0 + jj;
      let gu = t0 + ut;
      var vb = 0.0;
      if (gj < p.n && gu < p.k) { vb = ${readB(idxB, h)}; }
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
      let idx = oc + gi * p.n + gj;
      ${storeC('acc[r][c]', h)}
    }
  }
}
`;
}

/**
 * Rows and columns of C per thread, threads per workgroup side, of the direct matmul. 8 x 8 per
 * thread on 8 x 8 threads measured fastest on SwiftShader (2.2 GFLOP/s at 512^3 on 2 cores, against
 * 1.2 for 4 x 4 and 1.9 for 8 x 16).
 */
const DR = 8, DC = 8, DW = 8;
/** Output tile of one workgroup of the direct matmul. */
export const DIRECT_TILE_M = DR * DW;
export const DIRECT_TILE_N = DC * DW;

export function matmulDirectKey(transA: boolean, transB: boolean, h: MatmulStorage = FLOAT32_OPERANDS): string {
  return `matmul-direct:${transA ? 't' : 'n'}${transB ? 't' : 'n'}${storageKey(h)}:${DR}x${DC}`;
}

/**
 * The same product without workgroup memory or barriers: each thread reads its rows of op(A) and
 * columns of op(B) straight from storage. On software adapters, where storage is plain memory and
 * a barrier switches every invocation of the workgroup, this is the faster form.
 */
export function matmulDirectSource(transA: boolean, transB: boolean, h: MatmulStorage = FLOAT32_OPERANDS): string {
  const a = (r: string) => readA(transA ? `oa + kk * p.m + ${r}` : `oa + ${r} * p.k + kk`, h);
  const b = (c: string) => readB(transB ? `ob + ${c} * p.k + kk` : `ob + kk * p.n + ${c}`, h);
  const rows = [...Array(DR).keys()];
  const quads = [...Array(DC / 4).keys()];
  const cols = [...Array(DC).keys()];
  return `
${bindings(h)}

@compute @workgroup_size(${DW}, ${DW})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) l3: vec3<u32>) {
  let row0 = wid.y * ${DIRECT_TILE_M}u + l3.y * ${DR}u;
  let col0 = wid.x * ${DIRECT_TILE_N}u + l3.x * ${DC}u;
  if (row0 >= p.m || col0 >= p.n) { return; }
  let oa = wid.z * p.sa;
  let ob = wid.z * p.sb;
  let oc = wid.z * p.sc;
  // Rows and columns past the edge read the last valid one; their results are not written.
${rows.map((r) => `  let r${r} = min(row0 + ${r}u, p.m - 1u);`).join('\n')}
${cols.map((c) => `  let c${c} = min(col0 + ${c}u, p.n - 1u);`).join('\n')}
  var acc: array<vec4<f32>, ${DR * DC / 4}>;
  for (var kk = 0u; kk < p.k; kk = kk + 1u) {
${quads.map((q) => `    let b${q} = vec4<f32>(${[0, 1, 2, 3].map((c) => b(`c${q * 4 + c}`)).join(', ')});`).join('\n')}
${rows.map((r) => `    let a${r} = vec4<f32>(${a(`r${r}`)});\n${quads.map((q) => `    acc[${r * DC / 4 + q}] = fma(a${r}, b${q}, acc[${r * DC / 4 + q}]);`).join('\n')}`).join('\n')}
  }
  for (var r = 0u; r < ${DR}u; r = r + 1u) {
    let gi = row0 + r;
    if (gi >= p.m) { break; }
    for (var c = 0u; c < ${DC}u; c = c + 1u) {
      let gj = col0 + c;
      if (gj >= p.n) { break; }
      let idx = oc + gi * p.n + gj;
      ${storeC(`acc[r * ${DC / 4}u + c / 4u][c % 4u]`, h)}
    }
  }
}
`;
}
