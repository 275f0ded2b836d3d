// Shared by the direct and im2col kernels; under assembly/shared/ so it is no entry of its own.

// Output columns [lo, hi) of tap `k` that read inside [0, size): 0 <= o*stride - pad + k < size.
@inline export function lowValid(k: i32, stride: i32, pad: i32): i32 {
  const d = pad - k;
  return d <= 0 ? 0 : (d + stride - 1) / stride;
}
@inline export function highValid(k: i32, stride: i32, pad: i32, size: i32, outSize: i32): i32 {
  const d = size - 1 + pad - k;
  if (d < 0) return 0;
  return min(outSize, d / stride + 1);
}
