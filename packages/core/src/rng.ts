/**
 * A seedable deterministic RNG (xoshiro128**, seeded through splitmix32). Its whole state is four
 * 32-bit words, so a checkpoint can store it and a resumed run draws the same numbers.
 */
export interface Rng {
  /** Uniform in [0, 1) with 32 bits of randomness. */
  uniform(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Normal(mean, std) by Box-Muller. */
  normal(mean?: number, std?: number): number;
  /** Shuffles in place (Fisher-Yates) and returns the array. */
  shuffle<T>(items: T[]): T[];
  /** A new independent generator derived from this one. */
  fork(): Rng;
  /** The four state words, for checkpoints. */
  state(): [number, number, number, number];
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

/** Creates a generator from a seed, or from a saved state. */
export function createRng(seed: number | readonly [number, number, number, number]): Rng {
  let s: number[];
  if (typeof seed === 'number') {
    const sm = splitmix32(seed);
    s = [sm(), sm(), sm(), sm()];
    if (!s.some((w) => w !== 0)) s[0] = 1;
  } else {
    s = seed.map((w) => w >>> 0);
  }
  const nextU32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s[1], 5) >>> 0, 7), 9) >>> 0;
    const t = (s[1] << 9) >>> 0;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    for (let i = 0; i < 4; i++) s[i] >>>= 0;
    return result;
  };
  const rng: Rng = {
    uniform: () => nextU32() / 4294967296,
    int: (n) => {
      if (!Number.isInteger(n) || n <= 0) throw new RangeError(`rng.int: n must be a positive integer, got ${n}`);
      return Math.floor((nextU32() / 4294967296) * n);
    },
    normal: (mean = 0, std = 1) => {
      // 1 - u keeps the log argument in (0, 1].
      const u1 = 1 - nextU32() / 4294967296;
      const u2 = nextU32() / 4294967296;
      return mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    },
    shuffle: (items) => {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor((nextU32() / 4294967296) * (i + 1));
        [items[i], items[j]] = [items[j], items[i]];
      }
      return items;
    },
    fork: () => createRng([nextU32(), nextU32(), nextU32(), nextU32() | 1]),
    state: () => [s[0], s[1], s[2], s[3]],
  };
  return rng;
}

/**
 * A stateless hash to a uniform in [0, 1): the same function in TypeScript and WGSL (PCG hash),
 * so dropout masks agree across backends. Uses 24 bits so the float conversion is exact.
 */
export function hashUniform(seed: number, index: number): number {
  return (pcgHash((index ^ pcgHash(seed >>> 0)) >>> 0) >>> 8) / 16777216;
}

export function pcgHash(v: number): number {
  const state = (Math.imul(v >>> 0, 747796405) + 2891336453) >>> 0;
  const word = Math.imul(((state >>> (((state >>> 28) + 4) >>> 0)) ^ state) >>> 0, 277803737) >>> 0;
  return ((word >>> 22) ^ word) >>> 0;
}

/** WGSL of the same hash, for kernels that need it. */
export const WGSL_HASH_UNIFORM = /* wgsl */ `
fn fr_pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
fn fr_hash_uniform(seed: u32, index: u32) -> f32 {
  return f32(fr_pcg_hash(index ^ fr_pcg_hash(seed)) >> 8u) / 16777216.0;
}
`;
