// im2col and its adjoint for one sample and one group of a convolution: the patch matrix is
// K x P (K = channels * kh * kw rows, P = outH * outW columns), so a convolution is the GEMM
// W (O x K) . col and the input gradient is col2im(W^T . gradOut).

import { highValid, lowValid } from './shared/valid-range';

/** Rows of channels [c0, c1) of the patch matrix (threads split the channels). */
export function im2col(
  x: usize, col: usize, h: i32, w: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, oh: i32, ow: i32, c0: i32, c1: i32,
): void {
  const P = oh * ow;
  let row = col + <usize>(c0 * kh * kw * P) * 4;
  for (let c = c0; c < c1; c++) {
    const plane = x + <usize>(c * h * w) * 4;
    for (let ky = 0; ky < kh; ky++) {
      const y0 = lowValid(ky, sh, ph), y1 = max(y0, highValid(ky, sh, ph, h, oh));
      for (let kx = 0; kx < kw; kx++) {
        const x0 = lowValid(kx, sw, pw), x1 = max(x0, highValid(kx, sw, pw, w, ow));
        memory.fill(row, 0, <usize>(y0 * ow) * 4);
        for (let oy = y0; oy < y1; oy++) {
          const dst = row + <usize>(oy * ow) * 4;
          const src = plane + <usize>((oy * sh - ph + ky) * w - pw + kx) * 4;
          memory.fill(dst, 0, <usize>x0 * 4);
          if (sw == 1) memory.copy(dst + <usize>x0 * 4, src + <usize>x0 * 4, <usize>(x1 - x0) * 4);
          else for (let ox = x0; ox < x1; ox++) store<f32>(dst + <usize>ox * 4, load<f32>(src + <usize>(ox * sw) * 4));
          memory.fill(dst + <usize>x1 * 4, 0, <usize>(ow - x1) * 4);
        }
        memory.fill(row + <usize>(y1 * ow) * 4, 0, <usize>((oh - y1) * ow) * 4);
        row += <usize>P * 4;
      }
    }
  }
}

/** Planes [c0, c1) of gx (h x w each) = the adjoint of im2col applied to col. */
export function col2im(
  col: usize, gx: usize, h: i32, w: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, oh: i32, ow: i32, c0: i32, c1: i32,
): void {
  const P = oh * ow;
  let row = col + <usize>(c0 * kh * kw * P) * 4;
  memory.fill(gx + <usize>(c0 * h * w) * 4, 0, <usize>((c1 - c0) * h * w) * 4);
  for (let c = c0; c < c1; c++) {
    const plane = gx + <usize>(c * h * w) * 4;
    for (let ky = 0; ky < kh; ky++) {
      const y0 = lowValid(ky, sh, ph), y1 = highValid(ky, sh, ph, h, oh);
      for (let kx = 0; kx < kw; kx++) {
        const x0 = lowValid(kx, sw, pw), x1 = highValid(kx, sw, pw, w, ow);
        for (let oy = y0; oy < y1; oy++) {
          const src = row + <usize>(oy * ow) * 4;
          const dst = plane + <usize>((oy * sh - ph + ky) * w - pw + kx) * 4;
          if (sw == 1) {
            let ox = x0;
            for (; ox + 4 <= x1; ox += 4) {
              const d = dst + <usize>ox * 4;
              v128.store(d, f32x4.add(v128.load(d), v128.load(src + <usize>ox * 4)));
            }
            for (; ox < x1; ox++) {
              const d = dst + <usize>ox * 4;
              store<f32>(d, load<f32>(d) + load<f32>(src + <usize>ox * 4));
            }
          } else {
            for (let ox = x0; ox < x1; ox++) {
              const d = dst + <usize>(ox * sw) * 4;
              store<f32>(d, load<f32>(d) + load<f32>(src + <usize>ox * 4));
            }
          }
        }
        row += <usize>P * 4;
      }
    }
  }
}
