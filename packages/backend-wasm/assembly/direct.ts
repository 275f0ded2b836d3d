// Direct convolutions for groups of one or two channels (depthwise and MobileFaceNet's groups of
// 2), where im2col + GEMM would multiply matrices of one or two rows. Each kernel tap adds a
// weighted row of the input to a row of the output, 4 lanes at a time when the stride is 1.
// Threads split the output channels (forward, weight gradient) or input channels (input gradient).

import { highValid, lowValid } from './shared/valid-range';

/** dst[i] += wv * src[i * stride] for i in [lo, hi). */
@inline function axpyRow(dst: usize, src: usize, wv: f32, lo: i32, hi: i32, stride: i32): void {
  let i = lo;
  if (stride == 1) {
    const vw = f32x4.splat(wv);
    for (; i + 4 <= hi; i += 4) {
      const d = dst + <usize>i * 4;
      v128.store(d, f32x4.add(v128.load(d), f32x4.mul(vw, v128.load(src + <usize>i * 4))));
    }
  }
  for (; i < hi; i++) {
    const d = dst + <usize>i * 4;
    store<f32>(d, load<f32>(d) + wv * load<f32>(src + <usize>(i * stride) * 4));
  }
}

export function directForward(
  x: usize, w: usize, out: usize, batch: i32, inC: i32, h: i32, wd: i32, outC: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, oh: i32, ow: i32, groups: i32, o0: i32, o1: i32,
): void {
  const cg = inC / groups, og = outC / groups;
  for (let n = 0; n < batch; n++) {
    for (let o = o0; o < o1; o++) {
      const g = o / og;
      const plane = out + <usize>((n * outC + o) * oh * ow) * 4;
      memory.fill(plane, 0, <usize>(oh * ow) * 4);
      for (let ci = 0; ci < cg; ci++) {
        const xp = x + <usize>((n * inC + g * cg + ci) * h * wd) * 4;
        const wp = w + <usize>((o * cg + ci) * kh * kw) * 4;
        for (let ky = 0; ky < kh; ky++) {
          const y0 = lowValid(ky, sh, ph), y1 = highValid(ky, sh, ph, h, oh);
          for (let kx = 0; kx < kw; kx++) {
            const x0 = lowValid(kx, sw, pw), x1 = highValid(kx, sw, pw, wd, ow);
            const wv = load<f32>(wp + <usize>(ky * kw + kx) * 4);
            for (let oy = y0; oy < y1; oy++) {
              // Input column of output column 0 (may be negative: only [x0, x1) is read).
              const src = xp + <usize>((oy * sh - ph + ky) * wd - pw + kx) * 4;
              axpyRow(plane + <usize>(oy * ow) * 4, src, wv, x0, x1, sw);
            }
          }
        }
      }
    }
  }
}

export function directBackwardInput(
  gOut: usize, w: usize, gx: usize, batch: i32, inC: i32, h: i32, wd: i32, outC: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, oh: i32, ow: i32, groups: i32, c0: i32, c1: i32,
): void {
  const cg = inC / groups, og = outC / groups;
  for (let n = 0; n < batch; n++) {
    for (let c = c0; c < c1; c++) {
      const g = c / cg, ci = c % cg;
      const plane = gx + <usize>((n * inC + c) * h * wd) * 4;
      memory.fill(plane, 0, <usize>(h * wd) * 4);
      for (let oo = 0; oo < og; oo++) {
        const o = g * og + oo;
        const gp = gOut + <usize>((n * outC + o) * oh * ow) * 4;
        const wp = w + <usize>((o * cg + ci) * kh * kw) * 4;
        for (let ky = 0; ky < kh; ky++) {
          const y0 = lowValid(ky, sh, ph), y1 = highValid(ky, sh, ph, h, oh);
          for (let kx = 0; kx < kw; kx++) {
            const x0 = lowValid(kx, sw, pw), x1 = highValid(kx, sw, pw, wd, ow);
            const wv = load<f32>(wp + <usize>(ky * kw + kx) * 4);
            for (let oy = y0; oy < y1; oy++) {
              const dst = plane + <usize>((oy * sh - ph + ky) * wd - pw + kx) * 4;
              const src = gp + <usize>(oy * ow) * 4;
              if (sw == 1) {
                axpyRow(dst, src, wv, x0, x1, 1);
              } else {
                for (let ox = x0; ox < x1; ox++) {
                  const d = dst + <usize>(ox * sw) * 4;
                  store<f32>(d, load<f32>(d) + wv * load<f32>(src + <usize>ox * 4));
                }
              }
            }
          }
        }
      }
    }
  }
}

export function directBackwardWeight(
  gOut: usize, x: usize, gw: usize, batch: i32, inC: i32, h: i32, wd: i32, outC: i32, kh: i32, kw: i32,
  sh: i32, sw: i32, ph: i32, pw: i32, oh: i32, ow: i32, groups: i32, o0: i32, o1: i32,
): void {
  const cg = inC / groups, og = outC / groups;
  for (let o = o0; o < o1; o++) {
    const g = o / og;
    for (let ci = 0; ci < cg; ci++) {
      for (let ky = 0; ky < kh; ky++) {
        const y0 = lowValid(ky, sh, ph), y1 = highValid(ky, sh, ph, h, oh);
        for (let kx = 0; kx < kw; kx++) {
          const x0 = lowValid(kx, sw, pw), x1 = highValid(kx, sw, pw, wd, ow);
          let s: f64 = 0;
          for (let n = 0; n < batch; n++) {
            const xp = x + <usize>((n * inC + g * cg + ci) * h * wd) * 4;
            const gp = gOut + <usize>((n * outC + o) * oh * ow) * 4;
            for (let oy = y0; oy < y1; oy++) {
              const xr = xp + <usize>((oy * sh - ph + ky) * wd - pw + kx) * 4;
              const gr = gp + <usize>(oy * ow) * 4;
              let ox = x0;
              let acc = f32x4.splat(0);
              if (sw == 1) {
                for (; ox + 4 <= x1; ox += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(gr + <usize>ox * 4), v128.load(xr + <usize>ox * 4)));
              }
              let rest: f32 = 0;
              for (; ox < x1; ox++) rest += load<f32>(gr + <usize>ox * 4) * load<f32>(xr + <usize>(ox * sw) * 4);
              s += <f64>f32x4.extract_lane(acc, 0) + <f64>f32x4.extract_lane(acc, 1) + <f64>f32x4.extract_lane(acc, 2) + <f64>f32x4.extract_lane(acc, 3) + <f64>rest;
            }
          }
          store<f32>(gw + <usize>(((o * cg + ci) * kh + ky) * kw + kx) * 4, <f32>s);
        }
      }
    }
  }
}
