/**
 * QuadFace, an example third-party loss written only against the public API of @fr/core: an
 * additive cosine margin that grows quadratically as the target moves away, target logit
 * s (cos - m - q (1 - cos)^2), other logits s cos, with the exact gradient s (1 + 2 q (1 - cos)).
 */
import { cosineMarginHead, defineLoss, defineTransform, z, type MarginTransform } from '@fr/core';

export const quadfaceParams = z.object({
  s: z.number().positive().default(32).describe('scale of the logits'),
  m: z.number().min(0).default(0.2).describe('constant part of the cosine margin'),
  q: z.number().min(0).default(0.1).describe('quadratic part: extra margin q (1 - cos)^2 for hard targets'),
});

export type QuadFaceParams = z.infer<typeof quadfaceParams>;

export function quadfaceTransform(p: QuadFaceParams): MarginTransform {
  return defineTransform({
    key: 'example-quadface',
    uniforms: { s: p.s, m: p.m, q: p.q },
    target: (c, u) => u.s * (c - u.m - u.q * (1 - c) * (1 - c)),
    targetGrad: (c, u) => u.s * (1 + 2 * u.q * (1 - c)),
    other: (c, u) => u.s * c,
    otherGrad: (_c, u) => u.s,
    wgsl: /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * (z - u.m - u.q * (1.0 - z) * (1.0 - z)); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s * (1.0 + 2.0 * u.q * (1.0 - z)); }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
  });
}

export const quadface = defineLoss({
  name: 'quadface',
  description: 'example: quadratic additive cosine margin s (cos - m - q (1 - cos)^2), exact gradient',
  params: quadfaceParams,
  createHead(ctx) {
    const transform = quadfaceTransform(ctx.params);
    return cosineMarginHead(ctx, { name: 'quadface', transform: () => transform, reducer: 'softmax-ce' });
  },
});
