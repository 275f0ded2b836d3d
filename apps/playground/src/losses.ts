/**
 * The losses the playground offers, and the controls of their parameters read from each plugin's
 * zod schema (defaults, descriptions, bounds, enum options). Slider ranges are the one thing a
 * schema cannot say (s is "positive", not "1 to 64"), so they come from a small table here.
 */
import { ConfigError, type Loss, type MarginTransform } from '@fr/core';
import { arcface, arcfaceTransform, type ArcFaceParams } from '@fr/arcface';
import { cosface, cosfaceTransform, type CosFaceParams } from '@fr/cosface';
import { l2softmax, normface, softmax } from '@fr/softmax';
import { sphereface, spherefaceTransform } from '@fr/sphereface';
import { sphereface2, sphereface2Transform, type SphereFace2Params } from '@fr/sphereface2';
import { x2softmax, x2softmaxTransform, type X2SoftmaxParams } from '@fr/x2softmax';

export interface LossEntry {
  loss: Loss<unknown>;
  /** Label shown in the picker. */
  label: string;
  /** Fixed values the playground adds (SphereFace's variant), not shown as controls. */
  fixed?: Record<string, unknown>;
  /** The head normalises its class weights (a cosine classifier). */
  normalizedWeights: boolean;
  /** Starting values for the 2-d picture where the paper's differ (s = 64 saturates two dimensions). */
  preset2d?: Record<string, unknown>;
  /**
   * The plugin's margin transform for parsed parameters, to draw the decision boundary; absent for
   * heads whose logits are the plain (scaled) cosine.
   */
  transform?: (params: unknown) => MarginTransform;
}

export const LOSSES: readonly LossEntry[] = [
  { loss: arcface as Loss<unknown>, label: 'ArcFace', normalizedWeights: true, preset2d: { s: 16 }, transform: (p) => arcfaceTransform(p as ArcFaceParams) },
  { loss: cosface as Loss<unknown>, label: 'CosFace', normalizedWeights: true, preset2d: { s: 16 }, transform: (p) => cosfaceTransform(p as CosFaceParams) },
  {
    loss: sphereface as Loss<unknown>, label: 'SphereFace (opensphere)', fixed: { variant: 'opensphere' }, normalizedWeights: true, preset2d: { s: 16 },
    transform: (p) => spherefaceTransform((p as { s: number }).s, (p as { m: number }).m),
  },
  { loss: sphereface2 as Loss<unknown>, label: 'SphereFace2', normalizedWeights: true, preset2d: { r: 16 }, transform: (p) => sphereface2Transform(p as SphereFace2Params) },
  { loss: x2softmax as Loss<unknown>, label: 'X2-Softmax', normalizedWeights: true, preset2d: { s: 16 }, transform: (p) => x2softmaxTransform(p as X2SoftmaxParams) },
  { loss: normface as Loss<unknown>, label: 'NormFace (s·cos)', normalizedWeights: true, preset2d: { s: 16 } },
  { loss: softmax as Loss<unknown>, label: 'softmax', normalizedWeights: false },
  { loss: l2softmax as Loss<unknown>, label: 'L2-softmax', normalizedWeights: false },
];

export function lossEntry(name: string): LossEntry {
  const e = LOSSES.find((l) => l.loss.name === name);
  if (!e) throw new ConfigError(`unknown loss "${name}"; one of ${LOSSES.map((l) => l.loss.name).join(', ')}`);
  return e;
}

export type Control =
  | { kind: 'number'; name: string; description: string; default: number; min: number; max: number; step: number; integer: boolean }
  | { kind: 'enum'; name: string; description: string; default: string; options: string[] }
  | { kind: 'boolean'; name: string; description: string; default: boolean };

/** Practical slider ranges by loss and parameter name ('*' for any loss). */
const RANGES: Record<string, [min: number, max: number, step: number]> = {
  '*.s': [1, 64, 0.5],
  '*.m': [0, 1, 0.01],
  'sphereface.m': [1, 4, 0.05],
  'sphereface2.lambda': [0.05, 0.95, 0.05],
  'sphereface2.r': [1, 64, 0.5],
  'sphereface2.m': [0, 0.8, 0.01],
  'sphereface2.t': [0.5, 5, 0.1],
  'sphereface2.lw': [1, 100, 1],
  'x2softmax.a': [-2, -0.05, 0.05],
  'x2softmax.h': [-0.5, 0.5, 0.01],
  'x2softmax.k': [0, 1.5, 0.01],
  'l2softmax.alpha': [1, 64, 0.5],
};

// zod 4 keeps a schema's structure in `_zod.def`; only the few node types loss schemas use are read.
interface ZodNode {
  _zod: { def: { type: string; [k: string]: unknown } };
  description?: string;
  minValue?: number | null;
  maxValue?: number | null;
  isInt?: boolean;
}

const defOf = (s: unknown) => (s as ZodNode)._zod.def;

/** The object schema of a loss: unwraps preprocess pipes and picks the union member `fixed` names. */
function objectShape(schema: unknown, fixed: Record<string, unknown>): Record<string, ZodNode> {
  const def = defOf(schema);
  if (def.type === 'object') return def.shape as Record<string, ZodNode>;
  if (def.type === 'pipe') return objectShape(def.out, fixed);
  if (def.type === 'union') {
    const options = def.options as unknown[];
    const match = options.find((o) => {
      const shape = objectShape(o, fixed);
      return Object.entries(fixed).every(([k, v]) => {
        const d = shape[k] && defOf(shape[k]);
        return d?.type === 'literal' && (d.values as unknown[]).includes(v);
      });
    });
    return objectShape(match ?? options[0], fixed);
  }
  throw new Error(`cannot read the parameters of a ${def.type} schema`);
}

/** Controls for a loss's parameters, from its zod schema. */
export function controlsFor(entry: LossEntry): Control[] {
  const name = entry.loss.name;
  const fixed = entry.fixed ?? {};
  const out: Control[] = [];
  for (const [key, field] of Object.entries(objectShape(entry.loss.params, fixed))) {
    if (key in fixed) continue;
    let node = field;
    let dflt: unknown;
    const description = field.description ?? '';
    while (['default', 'optional', 'prefault'].includes(defOf(node).type)) {
      const d = defOf(node);
      if (d.type === 'default') dflt = typeof d.defaultValue === 'function' ? (d.defaultValue as () => unknown)() : d.defaultValue;
      node = d.innerType as ZodNode;
    }
    const d = defOf(node);
    const desc = description || node.description || '';
    if (d.type === 'number') {
      const def = typeof dflt === 'number' ? dflt : 0;
      const range = RANGES[`${name}.${key}`] ?? RANGES[`*.${key}`];
      let [min, max, step] = range ?? [Math.min(0, def * 4), Math.max(1, def * 4), 0.01];
      // The schema's bounds win over the table's.
      if (node.minValue != null && Number.isFinite(node.minValue)) min = Math.max(min, node.minValue);
      if (node.maxValue != null && Number.isFinite(node.maxValue)) max = Math.min(max, node.maxValue);
      const integer = Boolean(node.isInt);
      out.push({ kind: 'number', name: key, description: desc, default: def, min, max, step: integer ? 1 : step, integer });
    } else if (d.type === 'enum') {
      const options = Object.values(d.entries as Record<string, string>);
      out.push({ kind: 'enum', name: key, description: desc, default: String(dflt ?? options[0]), options });
    } else if (d.type === 'boolean') {
      out.push({ kind: 'boolean', name: key, description: desc, default: Boolean(dflt) });
    }
  }
  return out;
}

/** The schema's default parameter values (the papers' settings). */
export function defaultParams(entry: LossEntry): Record<string, unknown> {
  return Object.fromEntries(controlsFor(entry).map((c) => [c.name, c.default]));
}

/** The values the 2-d picture starts from: the schema's defaults with the 2-d preset on top. */
export function startParams(entry: LossEntry): Record<string, unknown> {
  return { ...defaultParams(entry), ...entry.preset2d };
}
