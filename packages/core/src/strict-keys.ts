/**
 * Unknown keys of plugin parameters. Plugin schemas are plain zod objects (or unions and
 * preprocessed forms of them) that would drop a key they do not know; a typo such as `margin:`
 * for `m:` would then train with the default. This finds such keys for any of those forms, so the
 * core can refuse them without each plugin declaring its object strict.
 */
import type { z } from './schema.js';

interface Def {
  type: string;
  shape?: Record<string, unknown>;
  catchall?: { _zod: { def: Def } };
  options?: z.ZodType[];
  in?: z.ZodType;
  out?: z.ZodType;
  innerType?: z.ZodType;
}

const defOf = (s: z.ZodType): Def => (s as unknown as { _zod: { def: Def } })._zod.def;

/**
 * The keys `schema` knows for `value` (the option of a union that accepts the value), or null when
 * the schema accepts any key or its form is not one this can see into.
 */
export function knownKeys(schema: z.ZodType, value: unknown): string[] | null {
  const def = defOf(schema);
  switch (def.type) {
    case 'object':
      if (def.catchall && defOf(def.catchall as unknown as z.ZodType).type !== 'never') return null;
      return Object.keys(def.shape ?? {});
    case 'union': {
      const options = def.options ?? [];
      const match = options.find((o) => o.safeParse(value).success);
      if (match) return knownKeys(match, value);
      const all = options.map((o) => knownKeys(o, value));
      return all.some((k) => k === null) ? null : [...new Set(all.flat() as string[])];
    }
    case 'pipe': {
      const input = def.in!;
      if (defOf(input).type === 'transform') {
        const r = input.safeParse(value);
        return r.success ? knownKeys(def.out!, r.data) : null;
      }
      return knownKeys(input, value);
    }
    case 'optional':
    case 'default':
    case 'prefault':
    case 'nullable':
    case 'readonly':
    case 'catch':
      return knownKeys(def.innerType!, value);
    default:
      return null;
  }
}

/** Keys of `value` that `schema` does not know, with the ones it knows; empty when all are known. */
export function unknownKeys(schema: z.ZodType, value: unknown): { unknown: string[]; known: string[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { unknown: [], known: [] };
  const known = knownKeys(schema, value);
  if (known === null) return { unknown: [], known: [] };
  return { unknown: Object.keys(value).filter((k) => !known.includes(k)), known };
}
