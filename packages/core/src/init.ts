/** Parameter initialisers, as PyTorch defines them. Each returns host data to upload. */
import type { Rng } from './rng.js';

export function normalInit(rng: Rng, size: number, mean: number, std: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = rng.normal(mean, std);
  return out;
}

export function uniformInit(rng: Rng, size: number, low: number, high: number): Float32Array {
  const out = new Float32Array(size);
  for (let i = 0; i < size; i++) out[i] = low + (high - low) * rng.uniform();
  return out;
}

/** fan_in and fan_out of a weight [out, in, ...kernel] as torch.nn.init computes them. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: shape[0] * receptive };
}

export function xavierUniform(rng: Rng, shape: readonly number[], gain = 1): Float32Array {
  const { fanIn, fanOut } = fans(shape);
  const a = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniformInit(rng, shape.reduce((x, y) => x * y, 1), -a, a);
}

export function xavierNormal(rng: Rng, shape: readonly number[], gain = 1): Float32Array {
  const { fanIn, fanOut } = fans(shape);
  return normalInit(rng, shape.reduce((x, y) => x * y, 1), 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

export interface KaimingOptions {
  mode?: 'fanIn' | 'fanOut';
  /** Negative slope of the rectifier after the layer (0 for ReLU; PReLU initial slope otherwise). */
  negativeSlope?: number;
}

function kaimingStd(shape: readonly number[], o: KaimingOptions): number {
  const { fanIn, fanOut } = fans(shape);
  const fan = o.mode === 'fanOut' ? fanOut : fanIn;
  const a = o.negativeSlope ?? 0;
  return Math.sqrt(2 / (1 + a * a)) / Math.sqrt(fan);
}

export function kaimingNormal(rng: Rng, shape: readonly number[], o: KaimingOptions = {}): Float32Array {
  return normalInit(rng, shape.reduce((x, y) => x * y, 1), 0, kaimingStd(shape, o));
}

export function kaimingUniform(rng: Rng, shape: readonly number[], o: KaimingOptions = {}): Float32Array {
  const bound = Math.sqrt(3) * kaimingStd(shape, o);
  return uniformInit(rng, shape.reduce((x, y) => x * y, 1), -bound, bound);
}
