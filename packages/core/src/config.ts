/**
 * Config schemas composed from the plugins a program was given: the `loss` field of a config is a
 * discriminated union over the installed losses' schemas (likewise backbones), so an unknown name
 * is an error that lists what is installed, and each loss validates its own parameters.
 */
import { z } from './schema.js';
import { ConfigError } from './errors.js';
import { unknownKeys } from './strict-keys.js';

interface NamedPlugin {
  readonly name: string;
  readonly params: z.ZodType<unknown>;
}

/**
 * `{ name: <one of the plugins>, ...that plugin's params }`. The plugin's own schema (any zod
 * schema: an object, a union of variants, a preprocessed object) validates everything but `name`,
 * and its issues are reported under the field's path.
 */
export function pluginUnion<T extends readonly NamedPlugin[]>(kind: string, plugins: T) {
  if (plugins.length === 0) throw new ConfigError(`no ${kind} plugins were given`);
  const byName = new Map(plugins.map((p) => [p.name, p]));
  const names = plugins.map((p) => p.name).join(', ');
  return z
    .object({ name: z.string({ error: `${kind} needs a name; installed: ${names}` }) })
    .catchall(z.unknown())
    .transform((value, ctx) => {
      const { name, ...params } = value;
      const plugin = byName.get(name);
      if (!plugin) {
        ctx.addIssue({ code: 'custom', path: ['name'], message: `unknown ${kind} ${JSON.stringify(name)}; installed: ${names}` });
        return z.NEVER;
      }
      const { unknown, known } = unknownKeys(plugin.params, params);
      for (const key of unknown) {
        ctx.addIssue({ code: 'custom', path: [key], message: `unknown parameter of ${kind} ${name}; valid: ${['name', ...known].join(', ')}` });
      }
      if (unknown.length) return z.NEVER;
      const r = plugin.params.safeParse(params);
      if (!r.success) {
        for (const issue of r.error.issues) ctx.addIssue({ code: 'custom', path: issue.path as (string | number)[], message: issue.message });
        return z.NEVER;
      }
      return { ...(r.data as object), name } as { name: string } & Record<string, unknown>;
    });
}

/** Parses `input` with `schema`; errors list every failing field by its path, from `source`. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, source = 'config'): z.infer<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data as z.infer<S>;
  throw new ConfigError(`${source} is invalid:\n${formatIssues(r.error)}`);
}

export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `  - ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('\n');
}
