/**
 * `z`, the schema builder plugins write their parameters with: zod's method-chain API
 * (`z.number().positive().default(64).describe(...)`, `z.infer`) over `zod/mini`. The classic
 * `z` of 'zod' is one namespace object holding every schema, its JSON Schema converters and every
 * locale; a bundler that cannot see which members a page uses (esbuild) keeps all of it (450 kB).
 * This object holds only the builders below and `zod/mini` is tree-shaken per function, so a page
 * with a loss pays about 45 kB (esbuild) for its schemas. The schemas are zod's own (zod/v4/core): they
 * parse, report issues and mix with classic zod schemas exactly as classic ones do.
 */
import * as m from 'zod/mini';
import type * as core from 'zod/v4/core';
import en from 'zod/v4/locales/en.js';

type Any = core.$ZodType;
type Out<S extends Any> = core.output<S>;
type Shape = core.$ZodLooseShape;
type NoUndefined<T> = T extends undefined ? never : T;

/** What every schema of `z` can chain. */
interface Chained<S extends Any> {
  optional(): Chain<m.ZodMiniOptional<S>>;
  nullable(): Chain<m.ZodMiniNullable<S>>;
  nullish(): Chain<m.ZodMiniOptional<m.ZodMiniNullable<S>>>;
  default(value: NoUndefined<Out<S>> | (() => NoUndefined<Out<S>>)): Chain<m.ZodMiniDefault<S>>;
  /** A copy with this description in zod's global registry (as classic `.describe`). */
  describe(description: string): Chain<S>;
  /** The description given by `.describe`, if any. */
  readonly description: string | undefined;
  refine(check: (value: Out<S>) => unknown, params?: string | core.$ZodCustomParams): Chain<S>;
  superRefine(refinement: (value: Out<S>, ctx: core.$RefinementCtx<Out<S>>) => void | Promise<void>): Chain<S>;
  transform<T>(fn: (value: Out<S>, ctx: core.$RefinementCtx<Out<S>>) => T | Promise<T>): Chain<m.ZodMiniPipe<S, m.ZodMiniTransform<Awaited<T>, Out<S>>>>;
  pipe<T extends core.$ZodType<unknown, Out<S>>>(next: T): Chain<m.ZodMiniPipe<S, T>>;
  array(): Chain<m.ZodMiniArray<S>>;
  or<T extends Any>(other: T): Chain<m.ZodMiniUnion<[S, T]>>;
}

type NumberCheck<S extends Any> = (params?: string | core.$ZodCheckNumberFormatParams) => Chain<S>;
type Bound<S extends Any> = (value: number, params?: string | core.$ZodCheckGreaterThanParams) => Chain<S>;

interface NumberChecks<S extends Any> {
  /** Bounds and integrality from the checks, as classic zod's getters (the playground's sliders read them). */
  readonly minValue: number; readonly maxValue: number; readonly isInt: boolean;
  int: NumberCheck<S>; positive: NumberCheck<S>; nonnegative: NumberCheck<S>; negative: NumberCheck<S>; nonpositive: NumberCheck<S>;
  min: Bound<S>; max: Bound<S>; gt: Bound<S>; gte: Bound<S>; lt: Bound<S>; lte: Bound<S>; multipleOf: Bound<S>;
}

type Length<S extends Any> = (value: number, params?: string | core.$ZodCheckMinLengthParams) => Chain<S>;

interface LengthChecks<S extends Any> {
  min: Length<S>; max: Length<S>; length: Length<S>;
  nonempty(params?: string | core.$ZodCheckMinLengthParams): Chain<S>;
}

interface StringChecks<S extends Any> extends LengthChecks<S> {
  regex(pattern: RegExp, params?: string | core.$ZodCheckRegexParams): Chain<S>;
  startsWith(prefix: string, params?: string | core.$ZodCheckStartsWithParams): Chain<S>;
  endsWith(suffix: string, params?: string | core.$ZodCheckEndsWithParams): Chain<S>;
  trim(): Chain<S>;
}

interface ObjectMethods<T extends m.ZodMiniObject> {
  extend<U extends Shape>(shape: U): Chain<ReturnType<typeof m.extend<T, U>>>;
  catchall<U extends Any>(schema: U): Chain<m.ZodMiniObject<T['shape'], core.$catchall<U>>>;
  /** Unknown keys are errors. */
  strict(): Chain<m.ZodMiniObject<T['shape'], core.$strict>>;
  /** Unknown keys are kept. */
  passthrough(): Chain<m.ZodMiniObject<T['shape'], core.$loose>>;
  partial(): Chain<ReturnType<typeof m.partial<T>>>;
}

/** A zod/mini schema with the chain methods of its kind. */
export type Chain<S extends Any> = S &
  Chained<S> &
  (S extends m.ZodMiniNumber<any> ? NumberChecks<S>
    : S extends m.ZodMiniString<any> ? StringChecks<S>
      : S extends m.ZodMiniArray<any> ? LengthChecks<S>
        : S extends m.ZodMiniObject ? ObjectMethods<S>
          : unknown);

type Self = Any & m.ZodMiniType & Record<string, unknown>;
const isNumber = (s: Self) => s._zod.def.type === 'number';
const check = (s: Self, c: core.$ZodCheck<never>) => chain(s.check(c as core.$ZodCheck<unknown>));

type Issue = string | (Record<string, unknown> & { fatal?: boolean; continue?: boolean });
/**
 * A zod/mini transform gets the bare parse payload; classic zod's also gets `ctx.addIssue`, which
 * plugin transforms call to reject a value (then return `z.NEVER`). Same issue form as classic's.
 */
function transformOf(fn: (value: unknown, ctx: core.$RefinementCtx) => unknown) {
  return m.transform((value: unknown, payload: core.ParsePayload) => {
    const ctx = payload as core.ParsePayload & { addIssue(issue: Issue): void };
    ctx.addIssue = (issue) => {
      if (typeof issue === 'string') {
        payload.issues.push({ code: 'custom', message: issue, input: value } as core.$ZodRawIssue);
        return;
      }
      const raw = { code: 'custom', input: value, ...issue };
      if (raw.fatal) raw.continue = false;
      payload.issues.push(raw as unknown as core.$ZodRawIssue);
    };
    return fn(value, ctx as unknown as core.$RefinementCtx);
  });
}

// One table for every kind; the types above give each kind only its own methods.
const methods: ThisType<Self> & Record<string, (this: Self, ...args: any[]) => unknown> = {
  optional() { return chain(m.optional(this)); },
  nullable() { return chain(m.nullable(this)); },
  nullish() { return chain(m.nullish(this)); },
  default(value: unknown) { return chain(m._default(this, value as never)); },
  describe(description: string) {
    const copy = this.clone();
    m.globalRegistry.add(copy, { description });
    return chain(copy);
  },
  refine(fn: (v: unknown) => unknown, params?: string) { return check(this, m.refine(fn, params)); },
  superRefine(fn: (v: unknown, ctx: core.$RefinementCtx) => void) { return check(this, m.superRefine(fn)); },
  transform(fn: (v: unknown, ctx: core.$RefinementCtx) => unknown) { return chain(m.pipe(this, transformOf(fn))); },
  pipe(next: Any) { return chain(m.pipe(this, next)); },
  array() { return chain(m.array(this)); },
  or(other: Any) { return chain(m.union([this, other])); },
  int(p?: string) { return check(this, m.int(p) as never); },
  positive(p?: string) { return check(this, m.positive(p)); },
  nonnegative(p?: string) { return check(this, m.nonnegative(p)); },
  negative(p?: string) { return check(this, m.negative(p)); },
  nonpositive(p?: string) { return check(this, m.nonpositive(p)); },
  min(v: number, p?: string) { return check(this, isNumber(this) ? m.gte(v, p) : m.minLength(v, p)); },
  max(v: number, p?: string) { return check(this, isNumber(this) ? m.lte(v, p) : m.maxLength(v, p)); },
  gt(v: number, p?: string) { return check(this, m.gt(v, p)); },
  gte(v: number, p?: string) { return check(this, m.gte(v, p)); },
  lt(v: number, p?: string) { return check(this, m.lt(v, p)); },
  lte(v: number, p?: string) { return check(this, m.lte(v, p)); },
  multipleOf(v: number, p?: string) { return check(this, m.multipleOf(v, p)); },
  length(v: number, p?: string) { return check(this, m.length(v, p)); },
  nonempty(p?: string) { return check(this, m.minLength(1, p)); },
  regex(pattern: RegExp, p?: string) { return check(this, m.regex(pattern, p)); },
  startsWith(prefix: string, p?: string) { return check(this, m.startsWith(prefix, p)); },
  endsWith(suffix: string, p?: string) { return check(this, m.endsWith(suffix, p)); },
  trim() { return check(this, m.trim()); },
  extend(shape: Shape) { return chain(m.extend(this as never, shape)); },
  catchall(schema: Any) { return chain(m.catchall(this as never, schema)); },
  strict() { return chain(m.catchall(this as never, m.never())); },
  passthrough() { return chain(m.catchall(this as never, m.unknown())); },
  partial() { return chain(m.partial(this as never)); },
};

type CheckDef = { check?: string; value?: number; format?: string };
/** A number schema's bounds from its checks (a format schema such as `z.int()` is its own first check). */
function numberFacts(s: Self): { min: number; max: number; isInt: boolean } {
  const facts = { min: -Infinity, max: Infinity, isInt: false };
  const own = s._zod.def as CheckDef & { checks?: { _zod: { def: CheckDef } }[] };
  for (const d of [own, ...(own.checks ?? []).map((c) => c._zod.def)]) {
    if (d.check === 'greater_than') facts.min = Math.max(facts.min, d.value!);
    if (d.check === 'less_than') facts.max = Math.min(facts.max, d.value!);
    if (d.check === 'multiple_of' && Number.isSafeInteger(d.value)) facts.isInt = true;
    if (d.check === 'number_format' && d.format?.includes('int')) {
      facts.isInt = true;
      const limit = d.format === 'safeint' ? Number.MAX_SAFE_INTEGER : d.format === 'int32' ? 2 ** 31 - 1 : 2 ** 32 - 1;
      facts.min = Math.max(facts.min, d.format === 'uint32' ? 0 : -limit - (d.format === 'int32' ? 1 : 0));
      facts.max = Math.min(facts.max, limit);
    }
  }
  return facts;
}

const descriptors: PropertyDescriptorMap = {
  description: { get(this: Any) { return m.globalRegistry.get(this)?.description; } },
  minValue: { get(this: Self) { return numberFacts(this).min; } },
  maxValue: { get(this: Self) { return numberFacts(this).max; } },
  isInt: { get(this: Self) { return numberFacts(this).isInt; } },
};
for (const [name, value] of Object.entries(methods)) descriptors[name] = { value };

/** Gives a zod/mini schema the chain methods (zod's clones do not keep them: each method chains its result again). */
function chain<S extends Any>(schema: S): Chain<S> {
  // zod/mini reports every issue as "Invalid input" until a locale is set; use English, as classic
  // zod does on first use, unless the program chose a locale.
  if (!m.config().localeError) m.config(en());
  return Object.defineProperties(schema, descriptors) as Chain<S>;
}

const wrap =
  <F extends (...args: any[]) => Any>(build: F) =>
  (...args: unknown[]) =>
    chain(build(...args));

type Lit = core.util.Literal;

/** The builders of `z`; their schemas are zod/mini's, with the chain methods of their kind. */
export interface SchemaBuilders {
  string(params?: string | core.$ZodStringParams): Chain<m.ZodMiniString<string>>;
  number(params?: string | core.$ZodNumberParams): Chain<m.ZodMiniNumber<number>>;
  int(params?: string | core.$ZodCheckNumberFormatParams): Chain<m.ZodMiniNumber<number>>;
  boolean(params?: string | core.$ZodBooleanParams): Chain<m.ZodMiniBoolean<boolean>>;
  literal<const T extends Lit>(value: T, params?: string | core.$ZodLiteralParams): Chain<m.ZodMiniLiteral<T>>;
  literal<const T extends readonly Lit[]>(value: T, params?: string | core.$ZodLiteralParams): Chain<m.ZodMiniLiteral<T[number]>>;
  enum<const T extends readonly string[]>(values: T, params?: string | core.$ZodEnumParams): Chain<m.ZodMiniEnum<core.util.ToEnum<T[number]>>>;
  object<T extends Shape = Record<never, Any>>(shape?: T, params?: string | core.$ZodObjectParams): Chain<m.ZodMiniObject<core.util.Writeable<T>, core.$strip>>;
  strictObject<T extends Shape>(shape: T, params?: string | core.$ZodObjectParams): Chain<m.ZodMiniObject<core.util.Writeable<T>, core.$strict>>;
  looseObject<T extends Shape>(shape: T, params?: string | core.$ZodObjectParams): Chain<m.ZodMiniObject<core.util.Writeable<T>, core.$loose>>;
  array<T extends Any>(element: T, params?: string | core.$ZodArrayParams): Chain<m.ZodMiniArray<T>>;
  tuple<const T extends readonly [Any, ...Any[]]>(items: T, params?: string | core.$ZodTupleParams): Chain<m.ZodMiniTuple<T, null>>;
  record<K extends core.$ZodRecordKey, V extends Any>(key: K, value: V, params?: string | core.$ZodRecordParams): Chain<m.ZodMiniRecord<K, V>>;
  union<const T extends readonly Any[]>(options: T, params?: string | core.$ZodUnionParams): Chain<m.ZodMiniUnion<T>>;
  discriminatedUnion<T extends readonly [core.$ZodTypeDiscriminable, ...core.$ZodTypeDiscriminable[]], D extends string>(
    discriminator: D,
    options: T,
    params?: string | core.$ZodDiscriminatedUnionParams,
  ): Chain<m.ZodMiniDiscriminatedUnion<T, D>>;
  intersection<A extends Any, B extends Any>(left: A, right: B): Chain<m.ZodMiniIntersection<A, B>>;
  optional<T extends Any>(schema: T): Chain<m.ZodMiniOptional<T>>;
  nullable<T extends Any>(schema: T): Chain<m.ZodMiniNullable<T>>;
  unknown(): Chain<m.ZodMiniUnknown>;
  any(): Chain<m.ZodMiniAny>;
  never(params?: string | core.$ZodNeverParams): Chain<m.ZodMiniNever>;
  lazy<T extends Any>(getter: () => T): Chain<m.ZodMiniLazy<T>>;
  custom<O>(check?: (data: O) => unknown, params?: string | core.$ZodCustomParams): Chain<m.ZodMiniCustom<O, O>>;
  /** `fn` runs on the raw input before `schema` parses it. */
  preprocess<T extends Any, I = unknown>(fn: (value: I, ctx: core.$RefinementCtx) => unknown, schema: T): Chain<m.ZodMiniPipe<m.ZodMiniTransform<unknown, I>, T>>;
  /** Returned from a transform after `ctx.addIssue` to end the parse. */
  readonly NEVER: never;
}

export const z: SchemaBuilders = {
  string: wrap(m.string), number: wrap(m.number), int: wrap(m.int), boolean: wrap(m.boolean), literal: wrap(m.literal), enum: wrap(m.enum),
  object: wrap(m.object), strictObject: wrap(m.strictObject), looseObject: wrap(m.looseObject),
  array: wrap(m.array), tuple: wrap(m.tuple), record: wrap(m.record),
  union: wrap(m.union), discriminatedUnion: wrap(m.discriminatedUnion), intersection: wrap(m.intersection),
  optional: wrap(m.optional), nullable: wrap(m.nullable),
  unknown: wrap(m.unknown), any: wrap(m.any), never: wrap(m.never), lazy: wrap(m.lazy), custom: wrap(m.custom),
  preprocess: (fn: (value: unknown, ctx: core.$RefinementCtx) => unknown, schema: Any) => chain(m.pipe(transformOf(fn), schema)),
  NEVER: m.NEVER,
} as SchemaBuilders;

/** What a parse returns (classic and mini schemas both give this shape). */
export type SafeParseResult<T> = { success: true; data: T; error?: never } | { success: false; error: core.$ZodError<T>; data?: never };

/** Any zod schema (classic, mini, or built with `z`), as plugin interfaces take it. */
export interface Schema<Output = unknown, Input = unknown> extends core.$ZodType<Output, Input> {
  // NoInfer: a plugin's parameter type is read from the schema's output, not from these methods.
  parse(data: unknown): NoInfer<Output>;
  safeParse(data: unknown): SafeParseResult<NoInfer<Output>>;
}

// Types under `z.` as classic zod names them, so plugin code keeps `z.infer<typeof params>`.
export declare namespace z {
  export type ZodType<Output = unknown, Input = unknown> = Schema<Output, Input>;
  export type infer<T> = core.output<T>;
  export type output<T> = core.output<T>;
  export type input<T> = core.input<T>;
  export type ZodError<T = unknown> = core.$ZodError<T>;
  export type ZodIssue = core.$ZodIssue;
}
