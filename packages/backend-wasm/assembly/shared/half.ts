// float16 <-> float32 lanes for the margin kernels, as core's half.ts (round to nearest even,
// subnormals, overflow to infinity, NaN kept quiet); under assembly/shared/ so it is no entry of its own.

// float16 bit patterns (the low 16 bits of each i32 lane) to f32 lanes, exactly: the magnitude's
// bits moved up to a float32's and scaled by 2^112 (normals and subnormals alike), infinities and NaNs set apart.
@inline export function halfToFloat4(h: v128): v128 {
  const magnitude = v128.and(h, i32x4.splat(0x7fff));
  const bits = i32x4.shl(magnitude, 13);
  const scaled = f32x4.mul(bits, f32x4.splat(5.192296858534828e33));
  const special = i32x4.ge_s(magnitude, i32x4.splat(0x7c00));
  const value = v128.bitselect(v128.or(bits, i32x4.splat(0x7f800000)), scaled, special);
  return v128.or(value, i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16));
}

// f32 lanes to float16 bit patterns (in i32 lanes).
@inline export function floatToHalf4(x: v128): v128 {
  const sign = i32x4.shr_u(v128.and(x, i32x4.splat(0x80000000)), 16);
  const a = v128.and(x, i32x4.splat(0x7fffffff));
  // Normal: rebias the exponent and round the 13 dropped bits to nearest even (a carry reaches infinity).
  const odd = v128.and(i32x4.shr_u(a, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(a, i32x4.splat(((15 - 127) << 23) + 0xfff)), odd), 13);
  // Below the smallest normal half: a float32 add aligns the bits and rounds them (to nearest even).
  const magic = i32x4.splat(126 << 23);
  const subnormal = i32x4.sub(f32x4.add(a, magic), magic);
  const nan = v128.or(i32x4.splat(0x7e00), i32x4.shr_u(v128.and(a, i32x4.splat(0x7fffff)), 13));
  let h = v128.bitselect(subnormal, normal, i32x4.lt_s(a, i32x4.splat(113 << 23)));
  h = v128.bitselect(i32x4.splat(0x7c00), h, i32x4.ge_s(a, i32x4.splat(143 << 23)));
  h = v128.bitselect(nan, h, i32x4.gt_s(a, i32x4.splat(0x7f800000)));
  return v128.or(h, sign);
}

/** n float16 values at src into float32 at dst. */
export function widenHalfRow(src: usize, dst: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + <usize>j * 4, halfToFloat4(v128.load16x4_u(src + <usize>j * 2)));
  for (; j < n; j++) store<f32>(dst + <usize>j * 4, f32x4.extract_lane(halfToFloat4(i32x4.splat(<i32>load<u16>(src + <usize>j * 2))), 0));
}

/** n float32 values at src rounded into float16 at dst. */
export function narrowHalfRow(src: usize, dst: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const h = floatToHalf4(v128.load(src + <usize>j * 4));
    v128.store64_lane(dst + <usize>j * 2, i16x8.narrow_i32x4_u(h, h), 0);
  }
  for (; j < n; j++) store<u16>(dst + <usize>j * 2, <u16>i32x4.extract_lane(floatToHalf4(f32x4.splat(load<f32>(src + <usize>j * 4))), 0));
}

// The float32 scores of row r of a margin loss: z's row, or halfZ's (when not 0) widened into the
// first row of `scratch`.
@inline export function scoresRow(z: usize, halfZ: usize, scratch: usize, r: i32, cols: i32): usize {
  if (halfZ == 0) return z + <usize>r * <usize>cols * 4;
  widenHalfRow(halfZ + <usize>r * <usize>cols * 2, scratch, cols);
  return scratch;
}

// Where row r's float32 gradient is written: grad's row, or (halfGrad not 0) the second row of
// `scratch`, narrowed into halfGrad's row after.
@inline export function gradRow(grad: usize, halfGrad: usize, scratch: usize, r: i32, cols: i32): usize {
  return halfGrad != 0 ? scratch + <usize>cols * 4 : grad + <usize>r * <usize>cols * 4;
}
