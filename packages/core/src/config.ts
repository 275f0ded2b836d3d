/**
 * Config schemas composed from the plugins a program was given: the `loss` field of a config is a
 * discriminated union over the installed losses' schemas (likewise backbones), so an unknown name
 * is an error that lists what is installed, and each loss validates its own parameters.
 */
import { z } from 'zod';
import { ConfigError } from './errors.js';

interface NamedPlugin {
  readonly name: string;
  readonly params: z.ZodType<unknown>;
}

/**
 * `{ name: <one of the plugins>, ...that plugin's params }`. Each plugin's params schema must be a
 * zod object; its fields sit next to `name`.
 */
export function pluginUnion<T extends readonly NamedPlugin[]>(kind: string, plugins: T) {
  if (plugins.length === 0) throw new ConfigError(`no ${kind} plugins were given`);
  const names = plugins.map((p) => p.name);
  const options = plugins.map((p) => {
    // Duck-typed: a plugin built against another copy of zod still composes.
    const params = p.params as unknown as Partial<z.ZodObject>;
    if (typeof params.extend !== 'function' || !params.shape) throw new ConfigError(`${kind} ${p.name}: params schema must be a z.object`);
    return params.extend({ name: z.literal(p.name) });
  });
  const union = z.discriminatedUnion('name', options as unknown as [z.ZodObject, ...z.ZodObject[]], {
    error: (issue) =>
      issue.code === 'invalid_union'
        ? `unknown ${kind} ${JSON.stringify((issue.input as { name?: unknown } | undefined)?.name)}; installed: ${names.join(', ')}`
        : undefined,
  });
  return union;
}

/** Parses `input` with `schema`; errors list every failing field by its path, from `source`. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, source = 'config'): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new ConfigError(`${source} is invalid:\n${formatIssues(r.error)}`);
}

export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('\n');
}
