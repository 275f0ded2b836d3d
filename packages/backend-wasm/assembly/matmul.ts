// C = alpha * op(A) op(B) + beta * C over a block of C, in float32 with 128-bit SIMD.
//
// GotoBLAS structure: op(B) is packed KC x NC into panels of NR = 8 columns (k-major), op(A)
// MC x KC into panels of MR = 4 rows (k-major), and a 4x8 micro-kernel keeps its 32 sums in eight
// registers. Every element of C is the same float32 sum in k order whatever block, tile or thread
// computes it, so results do not depend on how the work is split.

const MR = 4;
const NR = 8;
const KC = 256;
const MC = 128;
const NC = 1024;

// A scratch block starts with a header: whether the thread has packed its own copy of the operand
// every part reads whole, for the running product, and where (see matmulBlockSum's `own`).
const OWN_DONE = 0;
const OWN_AT = 4;
const HEADER = 16;
// matmulBlockSum's `own` for op(A) (src/matmul.ts's OWN_A; OWN_B, 2, is op(B)).
const OWN_A = 1;

/** Scratch bytes one caller needs: the header, a packed A block and a packed B block. */
export function matmulScratchBytes(): i32 {
  return HEADER + (MC * KC + KC * NC + MR * NR) * 4;
}

/** Before a product whose parts pack their own operand: thread scratch block `scratch` packs into `at`. */
export function matmulOwnPacking(scratch: usize, at: usize): void {
  store<i32>(scratch + OWN_DONE, 0);
  store<usize>(scratch + OWN_AT, at);
}

// Rows r0..r3 of 4 floats, stored transposed: column q at dst + q * stride (bytes).
@inline function transpose4(r0: v128, r1: v128, r2: v128, r3: v128, dst: usize, stride: usize): void {
  const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
  const t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
  const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
  const t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
  v128.store(dst, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(dst + stride, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  v128.store(dst + 2 * stride, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
  v128.store(dst + 3 * stride, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
}

// op(A)[i][p] = transA ? A[p*m + i] : A[i*k + p]; panels of 4 rows, zero past m.
function packA(a: usize, m: i32, k: i32, transA: bool, i0: i32, mc: i32, p0: i32, kc: i32, dst: usize): void {
  for (let ir = 0; ir < mc; ir += MR) {
    const rows = min(MR, mc - ir);
    const panel = dst + <usize>(ir * kc) * 4;
    if (rows == MR && transA) {
      for (let p = 0; p < kc; p++) {
        const src = a + (<usize>(p0 + p) * m + (i0 + ir)) * 4;
        v128.store(panel + <usize>p * 16, v128.load(src));
      }
    } else if (rows == MR) {
      const r0 = a + (<usize>(i0 + ir) * k + p0) * 4;
      const rs = <usize>k * 4;
      let p = 0;
      // Four k at a time: a 4x4 transpose of four row segments.
      for (; p + 4 <= kc; p += 4) {
        const s = r0 + <usize>p * 4;
        transpose4(v128.load(s), v128.load(s + rs), v128.load(s + 2 * rs), v128.load(s + 3 * rs), panel + <usize>p * 16, 16);
      }
      for (; p < kc; p++) {
        const s = r0 + <usize>p * 4;
        const d = panel + <usize>p * 16;
        store<f32>(d, load<f32>(s));
        store<f32>(d, load<f32>(s + rs), 4);
        store<f32>(d, load<f32>(s + 2 * rs), 8);
        store<f32>(d, load<f32>(s + 3 * rs), 12);
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let r = 0; r < MR; r++) {
          const i = i0 + ir + r;
          let v: f32 = 0;
          if (r < rows) v = transA ? load<f32>(a + (<usize>(p0 + p) * m + i) * 4) : load<f32>(a + (<usize>i * k + p0 + p) * 4);
          store<f32>(panel + <usize>(p * MR + r) * 4, v);
        }
      }
    }
  }
}

// op(B)[p][j] = transB ? B[j*k + p] : B[p*n + j]; panels of 8 columns, zero past n.
function packB(b: usize, n: i32, k: i32, transB: bool, j0: i32, nc: i32, p0: i32, kc: i32, dst: usize): void {
  for (let jr = 0; jr < nc; jr += NR) {
    const cols = min(NR, nc - jr);
    const panel = dst + <usize>(jr * kc) * 4;
    if (cols == NR && !transB) {
      for (let p = 0; p < kc; p++) {
        const src = b + (<usize>(p0 + p) * n + (j0 + jr)) * 4;
        const d = panel + <usize>p * 32;
        v128.store(d, v128.load(src));
        v128.store(d, v128.load(src, 16), 16);
      }
    } else if (cols == NR) {
      const c0 = b + (<usize>(j0 + jr) * k + p0) * 4;
      const cs = <usize>k * 4;
      let p = 0;
      // Four k at a time: two 4x4 transposes (columns 0-3 and 4-7 of the panel).
      for (; p + 4 <= kc; p += 4) {
        const s = c0 + <usize>p * 4;
        const d = panel + <usize>p * 32;
        transpose4(v128.load(s), v128.load(s + cs), v128.load(s + 2 * cs), v128.load(s + 3 * cs), d, 32);
        const s4 = s + 4 * cs;
        transpose4(v128.load(s4), v128.load(s4 + cs), v128.load(s4 + 2 * cs), v128.load(s4 + 3 * cs), d + 16, 32);
      }
      for (; p < kc; p++) {
        const s = c0 + <usize>p * 4;
        const d = panel + <usize>p * 32;
        for (let c = 0; c < NR; c++) store<f32>(d + <usize>c * 4, load<f32>(s + <usize>c * cs));
      }
    } else {
      for (let p = 0; p < kc; p++) {
        for (let c = 0; c < NR; c++) {
          const j = j0 + jr + c;
          let v: f32 = 0;
          if (c < cols) v = transB ? load<f32>(b + (<usize>j * k + p0 + p) * 4) : load<f32>(b + (<usize>(p0 + p) * n + j) * 4);
          store<f32>(panel + <usize>(p * NR + c) * 4, v);
        }
      }
    }
  }
}

// first: C = alpha * acc + beta * C (beta 0 ignores C); otherwise C += alpha * acc.
@inline function update(c: usize, acc: v128, alpha: v128, beta: v128, first: bool, betaZero: bool): void {
  let v = f32x4.mul(acc, alpha);
  if (!first) v = f32x4.add(v128.load(c), v);
  else if (!betaZero) v = f32x4.add(v, f32x4.mul(v128.load(c), beta));
  v128.store(c, v);
}

// `tile` (MR x NR floats, per caller) takes a partial result past the edge of C. op(A) is a packed
// panel at `ap`, or with `aInPlace` A itself: row r at ap + r * aRow, k steps of 4 bytes (rows past
// `rows` read the last row; their sums are dropped).
function micro(kc: i32, ap: usize, aInPlace: bool, aRow: usize, bp: usize, c: usize, ldc: i32, rows: i32, cols: i32, alpha: f32, beta: f32, first: bool, tile: usize): void {
  let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
  if (!aInPlace) {
    for (let p = 0; p < kc; p++) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let a = v128.load32_splat(ap);
      c00 = f32x4.add(c00, f32x4.mul(a, b0));
      c01 = f32x4.add(c01, f32x4.mul(a, b1));
      a = v128.load32_splat(ap, 4);
      c10 = f32x4.add(c10, f32x4.mul(a, b0));
      c11 = f32x4.add(c11, f32x4.mul(a, b1));
      a = v128.load32_splat(ap, 8);
      c20 = f32x4.add(c20, f32x4.mul(a, b0));
      c21 = f32x4.add(c21, f32x4.mul(a, b1));
      a = v128.load32_splat(ap, 12);
      c30 = f32x4.add(c30, f32x4.mul(a, b0));
      c31 = f32x4.add(c31, f32x4.mul(a, b1));
      ap += 16;
      bp += 32;
    }
  } else {
    let a0 = ap;
    let a1 = ap + aRow * <usize>min(1, rows - 1);
    let a2 = ap + aRow * <usize>min(2, rows - 1);
    let a3 = ap + aRow * <usize>min(3, rows - 1);
    for (let p = 0; p < kc; p++) {
      const b0 = v128.load(bp);
      const b1 = v128.load(bp, 16);
      let a = v128.load32_splat(a0);
      c00 = f32x4.add(c00, f32x4.mul(a, b0));
      c01 = f32x4.add(c01, f32x4.mul(a, b1));
      a = v128.load32_splat(a1);
      c10 = f32x4.add(c10, f32x4.mul(a, b0));
      c11 = f32x4.add(c11, f32x4.mul(a, b1));
      a = v128.load32_splat(a2);
      c20 = f32x4.add(c20, f32x4.mul(a, b0));
      c21 = f32x4.add(c21, f32x4.mul(a, b1));
      a = v128.load32_splat(a3);
      c30 = f32x4.add(c30, f32x4.mul(a, b0));
      c31 = f32x4.add(c31, f32x4.mul(a, b1));
      a0 += 4;
      a1 += 4;
      a2 += 4;
      a3 += 4;
      bp += 32;
    }
  }
  const va = f32x4.splat(alpha), vb = f32x4.splat(beta);
  const bz = beta == 0;
  if (rows == MR && cols == NR) {
    const ld = <usize>ldc * 4;
    update(c, c00, va, vb, first, bz); update(c + 16, c01, va, vb, first, bz);
    c += ld;
    update(c, c10, va, vb, first, bz); update(c + 16, c11, va, vb, first, bz);
    c += ld;
    update(c, c20, va, vb, first, bz); update(c + 16, c21, va, vb, first, bz);
    c += ld;
    update(c, c30, va, vb, first, bz); update(c + 16, c31, va, vb, first, bz);
    return;
  }
  v128.store(tile, c00); v128.store(tile, c01, 16);
  v128.store(tile, c10, 32); v128.store(tile, c11, 48);
  v128.store(tile, c20, 64); v128.store(tile, c21, 80);
  v128.store(tile, c30, 96); v128.store(tile, c31, 112);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < cols; j++) {
      const dst = c + (<usize>r * ldc + j) * 4;
      let v = alpha * load<f32>(tile + <usize>(r * NR + j) * 4);
      if (!first) v = load<f32>(dst) + v;
      else if (beta != 0) v = v + beta * load<f32>(dst);
      store<f32>(dst, v);
    }
  }
}

// Whole-operand packing, shared by every part of a threaded product: the layout is that of the
// per-block packing, block after block (KC-deep slices of k, each over all rows padded to MR or all
// columns padded to NR), so a part reads the block it would have packed at a computed offset.
@inline function roundUp(x: i32, q: i32): i32 {
  return (x + q - 1) / q * q;
}

/** Bytes of op(A) packed whole (m x k), for matmulBlockSum's `preA`. */
export function packedABytes(m: i32, k: i32): i32 {
  return roundUp(m, MR) * k * 4;
}

/** Bytes of op(B) packed whole (k x n), for matmulBlockSum's `preB`. */
export function packedBBytes(n: i32, k: i32): i32 {
  return roundUp(n, NR) * k * 4;
}

/** Packs rows [i0, i1) of op(A) (i0 a multiple of 4) into the whole-A layout at `dst`. */
export function packARows(a: usize, m: i32, k: i32, transA: bool, i0: i32, i1: i32, dst: usize): void {
  const mPad = roundUp(m, MR);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    packA(a, m, k, transA, i0, i1 - i0, pc, kc, dst + (<usize>mPad * pc + <usize>i0 * kc) * 4);
  }
}

/** Packs columns [j0, j1) of op(B) (j0 a multiple of 8) into the whole-B layout at `dst`. */
export function packBCols(b: usize, n: i32, k: i32, transB: bool, j0: i32, j1: i32, dst: usize): void {
  const nPad = roundUp(n, NR);
  for (let pc = 0; pc < k; pc += KC) {
    const kc = min(KC, k - pc);
    packB(b, n, k, transB, j0, j1 - j0, pc, kc, dst + (<usize>nPad * pc + <usize>j0 * kc) * 4);
  }
}

/**
 * Rows [i0, i1) and columns [j0, j1) of C (m x n, row stride ldc) = alpha op(A) op(B) + beta C.
 * `scratch` holds matmulScratchBytes() bytes, 16-byte aligned, owned by the caller. `preA` / `preB`
 * (0: none) hold op(A) / op(B) already packed whole (packARows, packBCols), which is then read in
 * place of packing it again.
 */
function matmulBlock(
  a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, ldc: i32, transA: bool, transB: bool,
  alpha: f32, beta: f32, i0: i32, i1: i32, j0: i32, j1: i32, preA: usize, preB: usize, scratch: usize,
): void {
  const packedA = scratch + HEADER;
  const packedB = packedA + <usize>(MC * KC) * 4;
  const tile = packedB + <usize>(KC * NC) * 4;
  if (k == 0) {
    // No products: C = beta C (beta 0 writes zeros).
    for (let i = i0; i < i1; i++) {
      for (let j = j0; j < j1; j++) {
        const dst = c + (<usize>i * ldc + j) * 4;
        store<f32>(dst, beta == 0 ? 0 : beta * load<f32>(dst));
      }
    }
    return;
  }
  // op(A) = A is read in place (its rows are already k-contiguous); op(A) = A^T is packed.
  const inPlace = !preA && !transA;
  const aRow = <usize>k * 4;
  for (let jc = j0; jc < j1; jc += NC) {
    const nc = min(NC, j1 - jc);
    for (let pc = 0; pc < k; pc += KC) {
      const kc = min(KC, k - pc);
      let blockB = packedB;
      if (preB) blockB = preB + (<usize>roundUp(n, NR) * pc + <usize>jc * kc) * 4;
      else packB(b, n, k, transB, jc, nc, pc, kc, packedB);
      const aPanel = inPlace ? aRow * MR : <usize>(MR * kc) * 4;
      for (let ic = i0; ic < i1; ic += MC) {
        const mc = min(MC, i1 - ic);
        let blockA = packedA;
        if (inPlace) blockA = a + (<usize>ic * k + pc) * 4;
        else if (preA) blockA = preA + (<usize>roundUp(m, MR) * pc + <usize>ic * kc) * 4;
        else packA(a, m, k, transA, ic, mc, pc, kc, packedA);
        for (let jr = 0; jr < nc; jr += NR) {
          const cols = min(NR, nc - jr);
          const bp = blockB + <usize>(jr * kc) * 4;
          for (let ir = 0; ir < mc; ir += MR) {
            const rows = min(MR, mc - ir);
            const cp = c + (<usize>(ic + ir) * ldc + jc + jr) * 4;
            micro(kc, blockA + <usize>(ir / MR) * aPanel, inPlace, aRow, bp, cp, ldc, rows, cols, alpha, beta, pc == 0, tile);
          }
        }
      }
    }
  }
}

/**
 * matmulBlock over `count` products summed into C in order: C = alpha sum_s op(A_s) op(B_s) + beta C,
 * operand s at a + s * strideA and b + s * strideB (bytes), and its whole packing (when given) at
 * preA / preB + s * preStride. Each element's sum runs over s, then k, as `count` calls with beta 1
 * after the first would.
 * `own` (one product): the thread's first part packs op(A) whole (OWN_A) or op(B) whole (2) where
 * matmulOwnPacking pointed its scratch block, and its later parts read that copy. Each thread then
 * reads only memory it wrote itself or that nobody writes: a copy packed by all threads together
 * would be read across cores, which costs more than packing it again (a 256^3 product).
 */
export function matmulBlockSum(
  a: usize, b: usize, c: usize, m: i32, n: i32, k: i32, ldc: i32, transA: bool, transB: bool,
  alpha: f32, beta: f32, i0: i32, i1: i32, j0: i32, j1: i32,
  count: i32, strideA: usize, strideB: usize, preA: usize, preB: usize, preStride: usize, own: i32, scratch: usize,
): void {
  if (own != 0) {
    const at = load<usize>(scratch + OWN_AT);
    if (load<i32>(scratch + OWN_DONE) == 0) {
      if (own == OWN_A) packARows(a, m, k, transA, 0, m, at);
      else packBCols(b, n, k, transB, 0, n, at);
      store<i32>(scratch + OWN_DONE, 1);
    }
    if (own == OWN_A) preA = at;
    else preB = at;
  }
  for (let s = 0; s < count; s++) {
    const o = <usize>s;
    matmulBlock(
      a + o * strideA, b + o * strideB, c, m, n, k, ldc, transA, transB, alpha, s == 0 ? beta : 1, i0, i1, j0, j1,
      preA ? preA + o * preStride : 0, preB ? preB + o * preStride : 0, scratch,
    );
  }
}
