import { z } from 'zod';
import { describe, expect, test } from 'vitest';
import { pluginUnion } from './config.js';
import { knownKeys, unknownKeys } from './strict-keys.js';

const plain = z.object({ s: z.number().default(64), m: z.number().default(0.5) });
const variants = z.preprocess(
  (v) => (v && typeof v === 'object' && !('variant' in v) ? { ...v, variant: 'a' } : v),
  z.discriminatedUnion('variant', [z.object({ variant: z.literal('a'), s: z.number() }), z.object({ variant: z.literal('b'), base: z.number() })]),
);

describe('unknown plugin parameters', () => {
  test('objects, unions (the option that takes the value), preprocessed and wrapped schemas', () => {
    expect(knownKeys(plain, {})).toEqual(['s', 'm']);
    expect(unknownKeys(plain, { s: 1, margin: 0.3 })).toEqual({ unknown: ['margin'], known: ['s', 'm'] });
    expect(unknownKeys(variants, { s: 1, base: 2 }).unknown).toEqual(['base']);
    expect(unknownKeys(variants, { variant: 'b', base: 2 }).unknown).toEqual([]);
    expect(knownKeys(plain.optional(), {})).toEqual(['s', 'm']);
    // A schema that takes any key is left alone.
    expect(knownKeys(plain.catchall(z.unknown()), {})).toBeNull();
    expect(unknownKeys(plain.passthrough(), { x: 1 }).unknown).toEqual([]);
  });
  test('pluginUnion reports each unknown key under its path, with the valid ones', () => {
    const schema = z.object({ loss: pluginUnion('loss', [{ name: 'arc', params: plain }]) });
    const r = schema.safeParse({ loss: { name: 'arc', margin: 0.3, scale: 2 } });
    expect(r.success).toBe(false);
    expect(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'loss.margin: unknown parameter of loss arc; valid: name, s, m',
      'loss.scale: unknown parameter of loss arc; valid: name, s, m',
    ]);
    expect(schema.parse({ loss: { name: 'arc', m: 0.3 } })).toEqual({ loss: { name: 'arc', s: 64, m: 0.3 } });
  });
});
