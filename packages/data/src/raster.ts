/**
 * A small anti-aliased rasteriser for the synthetic faces: shapes are signed distance functions in
 * "face space" (the unit square of the canonical, unrotated face); a similarity transform places
 * face space in the image. Coverage is clamp(0.5 - d / pixel, 0, 1), one evaluation per pixel,
 * which anti-aliases edges without supersampling.
 */

/** Signed distance (negative inside) at a face-space point. */
export type Sdf = (x: number, y: number) => number;

export interface Shape {
  sdf: Sdf;
  /** Face-space bounding box [x0, y0, x1, y1] (a loose box is fine; it only limits the pixel loop). */
  box: [number, number, number, number];
  color: readonly [number, number, number];
  opacity?: number;
}

export function ellipse(cx: number, cy: number, rx: number, ry: number, rot = 0): Sdf {
  const c = Math.cos(rot), s = Math.sin(rot);
  const ix2 = 1 / (rx * rx), iy2 = 1 / (ry * ry);
  return (x, y) => {
    const dx = x - cx, dy = y - cy;
    const u = c * dx + s * dy, v = -s * dx + c * dy;
    const k = Math.sqrt(u * u * ix2 + v * v * iy2);
    // First-order distance: (k - 1) / |grad k|, with |grad k| = sqrt(u^2/rx^4 + v^2/ry^4) / k.
    const g = Math.sqrt(u * u * ix2 * ix2 + v * v * iy2 * iy2);
    return g < 1e-12 ? -Math.min(rx, ry) : ((k - 1) * k) / g;
  };
}

export function ellipseBox(cx: number, cy: number, rx: number, ry: number): [number, number, number, number] {
  const r = Math.max(rx, ry);
  return [cx - r, cy - r, cx + r, cy + r];
}

/** A segment from a to b thickened to radius r. */
export function capsule(ax: number, ay: number, bx: number, by: number, r: number): Sdf {
  const ex = bx - ax, ey = by - ay;
  const ee = ex * ex + ey * ey || 1e-12;
  return (x, y) => {
    const px = x - ax, py = y - ay;
    const t = Math.max(0, Math.min(1, (px * ex + py * ey) / ee));
    const dx = px - t * ex, dy = py - t * ey;
    return Math.sqrt(dx * dx + dy * dy) - r;
  };
}

export function capsuleBox(ax: number, ay: number, bx: number, by: number, r: number): [number, number, number, number] {
  return [Math.min(ax, bx) - r, Math.min(ay, by) - r, Math.max(ax, bx) + r, Math.max(ay, by) + r];
}

/** Convex polygon (either winding): the largest signed distance to its edge lines. */
export function convexPolygon(points: readonly (readonly [number, number])[]): Sdf {
  const n = points.length;
  let area = 0;
  for (let i = 0; i < n; i++) {
    const [x0, y0] = points[i], [x1, y1] = points[(i + 1) % n];
    area += x0 * y1 - x1 * y0;
  }
  const sign = area > 0 ? 1 : -1;
  const edges = points.map(([x0, y0], i) => {
    const [x1, y1] = points[(i + 1) % n];
    const len = Math.hypot(x1 - x0, y1 - y0) || 1e-12;
    // Outward normal for the polygon's winding.
    const nx = (sign * (y1 - y0)) / len, ny = (sign * -(x1 - x0)) / len;
    return [nx, ny, -(nx * x0 + ny * y0)] as const;
  });
  return (x, y) => {
    let d = -Infinity;
    for (const [nx, ny, c] of edges) {
      const e = nx * x + ny * y + c;
      if (e > d) d = e;
    }
    return d;
  };
}

export function pointsBox(points: readonly (readonly [number, number])[]): [number, number, number, number] {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const [x, y] of points) {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  }
  return [x0, y0, x1, y1];
}

export const intersect = (a: Sdf, b: Sdf): Sdf => (x, y) => Math.max(a(x, y), b(x, y));
export const union = (a: Sdf, b: Sdf): Sdf => (x, y) => Math.min(a(x, y), b(x, y));
export const subtract = (a: Sdf, b: Sdf): Sdf => (x, y) => Math.max(a(x, y), -b(x, y));
/** The outline of a shape, `t` thick on each side. */
export const ring = (a: Sdf, t: number): Sdf => (x, y) => Math.abs(a(x, y)) - t;
/** Half-plane n.p + c <= 0 (n need not be unit). */
export function halfPlane(nx: number, ny: number, px: number, py: number): Sdf {
  const l = Math.hypot(nx, ny);
  return (x, y) => ((x - px) * nx + (y - py) * ny) / l;
}

/**
 * Face space to pixels: p_img = size * (scale * R(angle) (p - 0.5) + 0.5 + t). The canvas is RGB
 * float in [0, 1], HWC.
 */
export class Canvas {
  readonly rgb: Float32Array;
  private readonly a: number;
  private readonly b: number;
  private readonly tx: number;
  private readonly ty: number;
  /** One pixel in face-space units. */
  readonly pixel: number;

  constructor(readonly size: number, scale: number, angle: number, shiftX: number, shiftY: number) {
    this.rgb = new Float32Array(size * size * 3);
    this.a = size * scale * Math.cos(angle);
    this.b = size * scale * Math.sin(angle);
    this.tx = size * (0.5 + shiftX);
    this.ty = size * (0.5 + shiftY);
    this.pixel = 1 / (size * scale);
  }

  /** Face space to image coordinates (pixel centres at integer + 0.5). */
  toImage(x: number, y: number): [number, number] {
    const u = x - 0.5, v = y - 0.5;
    return [this.a * u - this.b * v + this.tx, this.b * u + this.a * v + this.ty];
  }

  /** Image coordinates to face space. */
  toFace(px: number, py: number): [number, number] {
    const u = px - this.tx, v = py - this.ty;
    const det = this.a * this.a + this.b * this.b;
    return [(this.a * u + this.b * v) / det + 0.5, (-this.b * u + this.a * v) / det + 0.5];
  }

  draw(shape: Shape): void {
    const [x0, y0, x1, y1] = shape.box;
    let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    for (const [fx, fy] of [[x0, y0], [x1, y0], [x0, y1], [x1, y1]] as const) {
      const [ix, iy] = this.toImage(fx, fy);
      minX = Math.min(minX, ix); minY = Math.min(minY, iy); maxX = Math.max(maxX, ix); maxY = Math.max(maxY, iy);
    }
    const n = this.size;
    const px0 = Math.max(0, Math.floor(minX - 1)), py0 = Math.max(0, Math.floor(minY - 1));
    const px1 = Math.min(n - 1, Math.ceil(maxX + 1)), py1 = Math.min(n - 1, Math.ceil(maxY + 1));
    if (px0 > px1 || py0 > py1) return;
    const inv = 1 / this.pixel;
    const op = shape.opacity ?? 1;
    const [r, g, b] = shape.color;
    const det = this.a * this.a + this.b * this.b;
    const ia = this.a / det, ib = this.b / det;
    const rgb = this.rgb;
    for (let py = py0; py <= py1; py++) {
      const v = py + 0.5 - this.ty;
      for (let px = px0; px <= px1; px++) {
        const u = px + 0.5 - this.tx;
        const d = shape.sdf(ia * u + ib * v + 0.5, -ib * u + ia * v + 0.5);
        let cov = 0.5 - d * inv;
        if (cov <= 0) {
          // Distance bounds are near 1-Lipschitz: jump over pixels that cannot be reached yet
          // (0.7 keeps a margin for the first-order ellipse distance).
          const skip = Math.floor(0.7 * d * inv) - 1;
          if (skip > 0) px += skip;
          continue;
        }
        if (cov > 1) cov = 1;
        cov *= op;
        const o = (py * n + px) * 3;
        rgb[o] += (r - rgb[o]) * cov;
        rgb[o + 1] += (g - rgb[o + 1]) * cov;
        rgb[o + 2] += (b - rgb[o + 2]) * cov;
      }
    }
  }
}
