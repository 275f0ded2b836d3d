/**
 * Uniform layouts: a kernel declares its scalar parameters once, and gets both the WGSL struct and
 * a packer. Every field is 4 bytes, so the WGSL layout is the declaration order with no padding.
 */

export type ScalarType = 'u32' | 'i32' | 'f32';

export interface UniformLayout<K extends string> {
  /** `struct <name> { a: u32, b: f32, ... }` */
  struct(name: string): string;
  /** Packs values in declaration order (missing values are 0). */
  pack(values: Record<K, number | boolean>): ArrayBuffer;
  readonly bytes: number;
}

export function uniformLayout<K extends string>(fields: readonly (readonly [K, ScalarType])[]): UniformLayout<K> {
  // A struct may not be empty, and uniform bindings must be at least 16 bytes on some drivers.
  const count = Math.max(4, Math.ceil(fields.length / 4) * 4);
  const bytes = count * 4;
  return {
    bytes,
    struct(name) {
      const body = fields.map(([n, t]) => `  ${n}: ${t},`);
      for (let i = fields.length; i < count; i++) body.push(`  fr_pad${i}: u32,`);
      return `struct ${name} {\n${body.join('\n')}\n}`;
    },
    pack(values) {
      const buf = new ArrayBuffer(bytes);
      const view = new DataView(buf);
      fields.forEach(([n, t], i) => {
        const raw = values[n];
        const v: number = typeof raw === 'boolean' ? (raw ? 1 : 0) : (raw ?? 0);
        if (t === 'f32') view.setFloat32(i * 4, v, true);
        else if (t === 'i32') view.setInt32(i * 4, v, true);
        else view.setUint32(i * 4, v >>> 0, true);
      });
      return buf;
    },
  };
}
