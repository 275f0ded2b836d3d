import { expect, test } from 'vitest';
import { ConfigError } from './errors.js';
import { defineTransform, type MarginTransform } from './margin.js';

const base: MarginTransform = {
  key: 'threshold-with-context-gradient',
  uniforms: { s: 8 },
  target: (z, u) => u.s * z,
  targetGrad: (_z, u) => u.s,
  other: (z, u, row) => u.s * (z > row.target ? z * (row.context + z) : z),
  otherGrad: (z, u, row) => u.s * (z > row.target ? row.context + 2 * z : 1),
  otherThreshold: { scale: 8, lo: -Infinity, hi: Infinity, slope: 8, slopeOutside: 8, threshold: (_u, row) => row.target },
  wgsl: '',
};

test('otherThreshold holds row.context constant: a transform that also differentiates the context is refused', () => {
  const withGradient = { ...base, contextGradient: true, targetContextGrad: () => 0, otherContextGrad: () => 0 };
  const wgsl = 'fn fr_target_context_grad(z: f32, row: FrRow) -> f32 { return 0.0; }\nfn fr_other_context_grad(z: f32, row: FrRow) -> f32 { return 0.0; }';
  expect(() => defineTransform({ ...withGradient, wgsl })).toThrow(ConfigError);
  expect(() => defineTransform({ ...withGradient, wgsl })).toThrow(/transform threshold-with-context-gradient: otherThreshold treats row.context as a constant, so it cannot go with contextGradient/);
  expect(defineTransform(base).otherThreshold!.threshold({}, { target: 0.25, context: 0 })).toBe(0.25);
});
