/** Margin transforms defined for the tests (the loss packages are not dependencies of @fr/scale). */
import { arcMarginTransform, defineTransform, type MarginTransform } from '@fr/core';

/** ArcFace as insightface applies it now: s cos(theta + m) on the target, margin detached (slope s), from core's library. */
export const arcLike = (s = 64, m = 0.5): MarginTransform => arcMarginTransform(s, m, 'detached');

/** SphereFace2 C-type: r (g(z) -/+ m) with g(z) = 2((z + 1) / 2)^t - 1, exact gradient. */
export function sphere2Like(r = 40, m = 0.4, t = 3): MarginTransform {
  const g = (z: number, tt: number) => 2 * ((z + 1) / 2) ** tt - 1;
  const dg = (z: number, tt: number) => tt * ((z + 1) / 2) ** (tt - 1);
  return defineTransform({
    key: 'test-sphere2-c',
    uniforms: { r, m, t },
    target: (z, u) => u.r * (g(z, u.t) - u.m),
    targetGrad: (z, u) => u.r * dg(z, u.t),
    other: (z, u) => u.r * (g(z, u.t) + u.m),
    otherGrad: (z, u) => u.r * dg(z, u.t),
    wgsl: /* wgsl */ `
fn fr_g(z: f32) -> f32 { return 2.0 * pow((z + 1.0) * 0.5, u.t) - 1.0; }
fn fr_dg(z: f32) -> f32 { return u.t * pow((z + 1.0) * 0.5, u.t - 1.0); }
fn fr_target(z: f32, row: FrRow) -> f32 { return u.r * (fr_g(z) - u.m); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.r * fr_dg(z); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.r * (fr_g(z) + u.m); }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.r * fr_dg(z); }
`,
  });
}
