import { z as classic } from 'zod';
import { describe, expect, it } from 'vitest';
import { knownKeys } from './strict-keys.js';
import { z } from './schema.js';

type Case = { name: string; build: (b: any) => any; inputs: unknown[] };

// The forms plugins, the trainer's config and core write (packages/losses/*, backbones, apps/trainer).
const cases: Case[] = [
  {
    name: 'loss parameters: positive, min/max, enum, default, describe',
    build: (b: any) =>
      b.object({
        s: b.number().positive().default(64).describe('scale'),
        m: b.number().min(0).max(Math.PI).default(0.5),
        gradient: b.enum(['detached', 'exact']).default('detached'),
      }),
    inputs: [{}, { s: 32 }, { s: -1 }, { s: 'big' }, { m: 4 }, { gradient: 'both' }, null, { s: 1, m: 0.1, gradient: 'exact' }],
  },
  {
    name: 'int, gt, lte, multipleOf, nonnegative, negative',
    build: (b: any) =>
      b.object({
        k: b.number().int().positive().default(3),
        a: b.number().gt(0).lte(1).optional(),
        step: b.number().multipleOf(2).nonnegative().default(0),
        low: b.number().negative().nullable().default(null),
      }),
    inputs: [{}, { k: 2.5 }, { a: 0 }, { a: 1 }, { step: 3 }, { step: -2 }, { low: 1 }, { low: -1, k: 7, a: 0.5 }],
  },
  {
    name: 'a preprocessed union of variants (sphereface)',
    build: (b: any) =>
      b.preprocess(
        (v: unknown) => (v && typeof v === 'object' && !('variant' in v) ? { ...v, variant: 'a' } : v),
        b.discriminatedUnion('variant', [
          b.object({ variant: b.literal('a'), m: b.number().default(4) }),
          b.object({ variant: b.literal('b'), lambda: b.number().min(0).default(5) }),
        ]),
      ),
    inputs: [{}, { variant: 'b' }, { variant: 'c' }, { variant: 'b', lambda: -1 }, 3],
  },
  {
    name: 'strict objects, strings, arrays, records, unions, refine',
    build: (b: any) =>
      b.strictObject({
        path: b.string().min(1).describe('folder'),
        tags: b.array(b.string().regex(/^[a-z]+$/)).max(2).default([]),
        extra: b.record(b.string(), b.unknown()).default({}),
        size: b.union([b.number().int().positive(), b.string()]),
        flag: b.boolean().default(false),
        range: b
          .object({ lo: b.number(), hi: b.number() })
          .refine((r: { lo: number; hi: number }) => r.hi > r.lo, 'hi must be greater than lo')
          .optional(),
      }),
    inputs: [
      { path: 'x', size: 1 },
      { path: '', size: '1G' },
      { path: 'x', size: 1, typo: true },
      { path: 'x', size: 0 },
      { path: 'x', size: 1, tags: ['a', 'B'] },
      { path: 'x', size: 1, tags: ['a', 'b', 'c'] },
      { path: 'x', size: 1, range: { lo: 2, hi: 1 } },
      { path: 'x', size: 1, extra: { a: 1 }, flag: true },
    ],
  },
  {
    name: 'transform with ctx.addIssue and NEVER',
    build: (b: any) =>
      b.union([b.number().int().positive(), b.string()]).transform((v: number | string, ctx: { addIssue(i: unknown): void }) => {
        if (typeof v === 'number') return v;
        const n = Number.parseInt(v, 10);
        if (Number.isNaN(n)) {
          ctx.addIssue({ code: 'custom', message: `not a size: ${v}` });
          return b.NEVER;
        }
        return n * 1024;
      }),
    inputs: [4, '2', 'lots', -1],
  },
];

describe('z (zod/mini with the chain API) parses as classic zod', () => {
  for (const c of cases) {
    it(c.name, () => {
      const mine = c.build(z);
      const theirs = c.build(classic);
      for (const input of c.inputs) {
        const a = mine.safeParse(input);
        const b = theirs.safeParse(input);
        const issues = (r: any) => r.error?.issues.map((i: any) => ({ code: i.code, path: i.path, message: i.message }));
        expect({ input, success: a.success, data: a.data, issues: issues(a) }).toEqual({ input, success: b.success, data: b.data, issues: issues(b) });
      }
    });
  }

  it('keeps descriptions, strict-key knowledge and parse errors', () => {
    const params = z.object({ s: z.number().positive().default(64).describe('scale of the logits') });
    expect(params.shape.s.description).toBe('scale of the logits');
    expect(knownKeys(params, {})).toEqual(['s']);
    expect(() => params.parse({ s: 0 })).toThrow(/Too small: expected number to be >0/);
    const inferred: z.infer<typeof params> = params.parse({});
    expect(inferred).toEqual({ s: 64 });
  });

  it('number bounds and integrality read as classic zod reads them (minValue, maxValue, isInt)', () => {
    const forms: ((b: any) => any)[] = [
      (b) => b.number(),
      (b) => b.number().positive(),
      (b) => b.number().min(0).max(Math.PI),
      (b) => b.number().int().gt(1).lte(5),
      (b) => b.number().negative().gte(-3),
      (b) => b.number().multipleOf(2),
      (b) => b.number().multipleOf(0.5).lt(1),
      (b) => b.int().min(1),
    ];
    for (const form of forms) {
      const [mine, theirs] = [form(z), form(classic)];
      expect({ form: String(form), min: mine.minValue, max: mine.maxValue, isInt: mine.isInt }).toEqual({
        form: String(form), min: theirs.minValue, max: theirs.maxValue, isInt: theirs.isInt,
      });
    }
  });

  it('mixes with classic zod schemas both ways', () => {
    const inner = classic.object({ m: classic.number().default(1) });
    const outer = z.object({ head: inner, s: z.number().default(2) });
    expect(outer.parse({ head: {} })).toEqual({ head: { m: 1 }, s: 2 });
    expect(classic.object({ loss: outer }).parse({ loss: { head: { m: 3 } } })).toEqual({ loss: { head: { m: 3 }, s: 2 } });
  });

  it('object methods: extend, catchall, strict, passthrough, partial', () => {
    const base = z.object({ a: z.number() });
    expect(base.extend({ b: z.string() }).safeParse({ a: 1 }).success).toBe(false);
    expect(base.strict().safeParse({ a: 1, c: 2 }).success).toBe(false);
    expect(base.passthrough().parse({ a: 1, c: 2 })).toEqual({ a: 1, c: 2 });
    expect(base.catchall(z.number()).safeParse({ a: 1, c: 'x' }).success).toBe(false);
    expect(base.partial().parse({})).toEqual({});
  });
});
