/**
 * A loss plugin written only against @fr/core's public plugin API (`defineLoss`, `defineTransform`,
 * `cosineMarginHead`, the angular library), as a third party would write it: insightface's
 * combined margin s (cos(theta + m2) - m3), detached. Trainers and heads test with it that a loss
 * they do not know gets what its description allows (Partial FC, shards, float16 storage).
 */
import { z } from 'zod';
import { ANGULAR_WGSL, cosPlus } from '../angular.js';
import { cosineMarginHead } from '../head.js';
import { defineLoss } from '../loss.js';
import { defineTransform } from '../margin.js';

export const combinedMarginLoss = defineLoss({
  name: 'combined-margin',
  description: 'combined angular and cosine margin s (cos(theta + m2) - m3), detached (insightface CombinedMarginLoss)',
  params: z.object({
    s: z.number().positive().default(16).describe('scale of the logits'),
    m2: z.number().min(0).default(0.2).describe('additive angular margin'),
    m3: z.number().min(0).default(0.1).describe('additive cosine margin'),
  }),
  createHead(ctx) {
    const { s, m2, m3 } = ctx.params;
    const transform = defineTransform({
      key: 'combined-margin',
      uniforms: { s, m3, cos_m: Math.cos(m2), sin_m: Math.sin(m2) },
      target: (c, u) => u.s * (cosPlus(Math.min(Math.max(c, -1), 1), u.cos_m, u.sin_m) - u.m3),
      targetGrad: (_c, u) => u.s,
      other: (c, u) => u.s * c,
      otherGrad: (_c, u) => u.s,
      wgsl: ANGULAR_WGSL + /* wgsl */ `
fn fr_target(z: f32, row: FrRow) -> f32 { return u.s * (fr_cos_plus(clamp(z, -1.0, 1.0), u.cos_m, u.sin_m) - u.m3); }
fn fr_target_grad(z: f32, row: FrRow) -> f32 { return u.s; }
fn fr_other(z: f32, row: FrRow) -> f32 { return u.s * z; }
fn fr_other_grad(z: f32, row: FrRow) -> f32 { return u.s; }
`,
    });
    return cosineMarginHead(ctx, { name: 'combined-margin', transform: () => transform, reducer: 'softmax-ce' });
  },
});
