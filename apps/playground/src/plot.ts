/** Canvas drawings: the embedding on the unit circle (or sphere), the loss curve, input faces. */
import type { MarginTransform } from '@fr/core';
import { linearTicks, logTicks, type Tick } from './axis.js';
import { marginArcs } from './margin.js';
import { sphereMargin, type Point3 } from './margin-sphere.js';
import { normalizeRows } from './stats.js';

export const CLASS_COLORS = [
  '#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf', '#393b79', '#637939', '#ad494a', '#7b4173', '#3182bd', '#e6550d',
];

export const classColor = (c: number) => CLASS_COLORS[c % CLASS_COLORS.length];

/** Sizes the canvas backing store to its CSS box times the device pixel ratio; returns CSS size. */
function prepare(canvas: HTMLCanvasElement): { ctx: CanvasRenderingContext2D; w: number; h: number } {
  const ratio = globalThis.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

export interface EmbeddingPicture {
  embeddings: Float32Array;
  labels: Int32Array;
  weights: Float32Array;
  numClasses: number;
  dim: number;
  /** 3-d view: rotation about the vertical axis, then tilt toward the viewer, radians. */
  yaw?: number;
  pitch?: number;
  /** The loss's margin transform, to draw each class's decision region; null for plain cosine logits. */
  margin?: MarginTransform | null;
}

export interface EmbeddingDrawn {
  /** With a margin picture: the band (degrees) between neighbouring classes' decision regions (3-d: per class, toward its nearest one). */
  gapsDeg: number[];
}

/** Projects a unit vector: 2-d as is; 3-d rotated by yaw, then pitch, returning depth in [-1, 1] (1 faces the viewer). */
function project(x: number, y: number, z: number, yaw: number, pitch: number): [number, number, number] {
  const rx = Math.cos(yaw) * x + Math.sin(yaw) * z;
  const rz = -Math.sin(yaw) * x + Math.cos(yaw) * z;
  const ry = Math.cos(pitch) * y - Math.sin(pitch) * rz;
  const depth = Math.sin(pitch) * y + Math.cos(pitch) * rz;
  return [rx, ry, depth];
}

const vec = (v: Float64Array, i: number, dim: number): [number, number, number] => (dim === 2 ? [v[i * 2], v[i * 2 + 1], 0] : [v[i * 3], v[i * 3 + 1], v[i * 3 + 2]]);

/** A great circle of the sphere (points p cos t + q sin t), its near half solid and its far half dashed. */
function greatCircle(ctx: CanvasRenderingContext2D, cx: number, cy: number, r: number, p: number[], q: number[], yaw: number, pitch: number): void {
  for (const front of [false, true]) {
    ctx.beginPath();
    let pen = false;
    for (let i = 0; i <= 96; i++) {
      const t = (i / 96) * 2 * Math.PI;
      const [x, y, d] = project(p[0] * Math.cos(t) + q[0] * Math.sin(t), p[1] * Math.cos(t) + q[1] * Math.sin(t), p[2] * Math.cos(t) + q[2] * Math.sin(t), yaw, pitch);
      if (d >= 0 === front) {
        if (pen) ctx.lineTo(cx + x * r, cy - y * r);
        else ctx.moveTo(cx + x * r, cy - y * r);
        pen = true;
      } else pen = false;
    }
    ctx.setLineDash(front ? [] : [3, 3]);
    ctx.strokeStyle = front ? '#b8bec8' : '#dde1e6';
    ctx.stroke();
  }
  ctx.setLineDash([]);
}

/**
 * Sphere margins by class-weight snapshot (each training step makes a new one) and the transform's
 * uniforms: a drag only turns the view, so it redraws without tracing the regions again.
 */
const sphereCache = new WeakMap<Float32Array, { key: string; picture: ReturnType<typeof sphereMargin> }>();

function cachedSphereMargin(p: EmbeddingPicture, directions: Float64Array, margin: MarginTransform | null) {
  const key = JSON.stringify(margin ? margin.uniforms : null);
  let hit = sphereCache.get(p.weights);
  if (hit?.key !== key) {
    hit = { key, picture: sphereMargin(directions, p.numClasses, margin) };
    sphereCache.set(p.weights, hit);
  }
  return hit.picture;
}

/** A closed loop of unit points on the sphere in a class colour: near side solid, far side dashed and faded. */
function sphereLoop(ctx: CanvasRenderingContext2D, cx: number, cy: number, r: number, loop: readonly Point3[], color: string, yaw: number, pitch: number): void {
  const projected = loop.map((pt) => project(pt[0], pt[1], pt[2], yaw, pitch));
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  for (const front of [false, true]) {
    ctx.beginPath();
    for (let i = 0; i < projected.length; i++) {
      const [a, b] = [projected[i], projected[(i + 1) % projected.length]];
      if (a[2] >= 0 !== front || b[2] >= 0 !== front) continue;
      ctx.moveTo(cx + a[0] * r, cy - a[1] * r);
      ctx.lineTo(cx + b[0] * r, cy - b[1] * r);
    }
    ctx.setLineDash(front ? [] : [3, 3]);
    ctx.globalAlpha = front ? 0.8 : 0.3;
    ctx.stroke();
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = 1;
  ctx.lineWidth = 1;
}

/**
 * Normalised embeddings as dots on the unit circle (2-d) or sphere (3-d), coloured by class, with
 * the class-centre directions (normalised class weights) as rays. In 2-d, dots are jittered slightly
 * inward by sample index so that points at the same angle stay visible, and with a margin each
 * class's decision region is an arc outside the circle. In 3-d the far hemisphere is drawn faded,
 * and with a margin each class's decision region is a loop on the sphere around its centre.
 */
export function drawEmbedding(canvas: HTMLCanvasElement, p: EmbeddingPicture): EmbeddingDrawn {
  const { ctx, w, h } = prepare(canvas);
  const r = Math.min(w, h) / 2 - 18;
  const cx = w / 2, cy = h / 2;
  const yaw = p.dim === 2 ? 0 : p.yaw ?? 0.6;
  const pitch = p.dim === 2 ? 0 : p.pitch ?? 0.35;
  const n = p.labels.length;
  const e = normalizeRows(p.embeddings, n, p.dim);
  const wn = normalizeRows(p.weights, p.numClasses, p.dim);
  ctx.lineWidth = 1;
  if (p.dim === 2) {
    ctx.strokeStyle = '#c9ced6';
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.stroke();
    ctx.beginPath();
    ctx.moveTo(cx - r, cy);
    ctx.lineTo(cx + r, cy);
    ctx.moveTo(cx, cy - r);
    ctx.lineTo(cx, cy + r);
    ctx.strokeStyle = '#eef0f3';
    ctx.stroke();
  } else {
    const shade = ctx.createRadialGradient(cx - r * 0.35, cy - r * 0.35, r * 0.1, cx, cy, r);
    shade.addColorStop(0, '#ffffff');
    shade.addColorStop(1, '#e3e7ee');
    ctx.fillStyle = shade;
    ctx.beginPath();
    ctx.arc(cx, cy, r, 0, 2 * Math.PI);
    ctx.fill();
    ctx.strokeStyle = '#9aa3af';
    ctx.stroke();
    // Equator and two meridians, so that the rotation reads.
    greatCircle(ctx, cx, cy, r, [1, 0, 0], [0, 0, 1], yaw, pitch);
    greatCircle(ctx, cx, cy, r, [1, 0, 0], [0, 1, 0], yaw, pitch);
    greatCircle(ctx, cx, cy, r, [0, 0, 1], [0, 1, 0], yaw, pitch);
  }

  let gapsDeg: number[] = [];
  if (p.dim === 2 && p.margin !== undefined && p.numClasses >= 2) {
    const picture = marginArcs(wn, p.numClasses, p.margin);
    gapsDeg = picture.gaps.map((g) => (g * 180) / Math.PI);
    ctx.lineWidth = 4;
    ctx.lineCap = 'butt';
    for (const arc of picture.arcs) {
      ctx.strokeStyle = classColor(arc.cls);
      ctx.globalAlpha = 0.55;
      ctx.beginPath();
      // Canvas angles run clockwise (y down): negate.
      ctx.arc(cx, cy, r + 6, -arc.to, -arc.from);
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.lineWidth = 1;
  }
  if (p.dim === 3 && p.margin !== undefined && p.numClasses >= 2) {
    const picture = cachedSphereMargin(p, wn, p.margin);
    gapsDeg = picture.gaps.map((g) => (g * 180) / Math.PI);
    for (const region of picture.regions) if (region.boundary.length) sphereLoop(ctx, cx, cy, r, region.boundary, classColor(region.cls), yaw, pitch);
  }

  const drawRay = (c: number) => {
    const [x, y, z] = vec(wn, c, p.dim);
    const [px, py, depth] = project(x, y, z, yaw, pitch);
    ctx.strokeStyle = classColor(c);
    ctx.globalAlpha = p.dim === 2 ? 0.9 : 0.35 + 0.55 * (depth + 1) / 2;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(cx + px * (r + 10), cy - py * (r + 10));
    ctx.stroke();
  };
  const drawDot = (i: number) => {
    const [x, y, z] = vec(e, i, p.dim);
    const [px, py, depth] = project(x, y, z, yaw, pitch);
    const radius = r * (p.dim === 2 ? 1 - 0.06 * ((i * 7) % 5) / 4 : 1);
    ctx.globalAlpha = p.dim === 2 ? 0.8 : depth >= 0 ? 0.9 : 0.3;
    ctx.fillStyle = classColor(p.labels[i]);
    ctx.beginPath();
    ctx.arc(cx + px * radius, cy - py * radius, p.dim === 2 ? 3.2 : 2.4 + 1.2 * (depth + 1) / 2, 0, 2 * Math.PI);
    ctx.fill();
  };
  // Far side first, near side over it.
  const depthOf = (v: Float64Array, i: number) => (p.dim === 2 ? 0 : project(...vec(v, i, p.dim), yaw, pitch)[2]);
  const rays = Array.from({ length: p.numClasses }, (_, c) => c).sort((a, b) => depthOf(wn, a) - depthOf(wn, b));
  const dots = Array.from({ length: n }, (_, i) => i).sort((a, b) => depthOf(e, a) - depthOf(e, b));
  for (const c of rays) drawRay(c);
  for (const i of dots) drawDot(i);
  ctx.globalAlpha = 1;
  return { gapsDeg };
}

export interface Curve {
  values: readonly number[];
  color: string;
  label: string;
}

export interface CurveAxis {
  scale: 'log' | 'linear';
  ticks: Tick[];
}

/** Loss against step, on a log scale when the values span more than a decade, with labelled ticks. */
export function drawCurves(canvas: HTMLCanvasElement, curves: readonly Curve[]): CurveAxis | null {
  const { ctx, w, h } = prepare(canvas);
  const pad = { l: 40, r: 8, t: 8, b: 20 };
  const all = curves.flatMap((c) => c.values).filter((v) => Number.isFinite(v) && v > 0);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#6b7280';
  if (all.length === 0) {
    ctx.fillText('loss per step appears here', pad.l, h / 2);
    return null;
  }
  const lo = Math.min(...all), hi = Math.max(...all);
  const log = hi / lo > 10;
  const f = (v: number) => (log ? Math.log10(v) : v);
  const ticks = log ? logTicks(lo, hi) : linearTicks(lo, hi, 3);
  // The axis spans the data and its ticks.
  const a = Math.min(f(lo), ...ticks.map((t) => f(t.value)));
  const top = Math.max(f(hi), ...ticks.map((t) => f(t.value)));
  const b = top === a ? a + 1 : top;
  const steps = Math.max(...curves.map((c) => c.values.length), 2);
  const X = (i: number) => pad.l + ((w - pad.l - pad.r) * i) / (steps - 1);
  const Y = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - (f(v) - a) / (b - a));
  ctx.strokeStyle = '#e5e7eb';
  ctx.lineWidth = 1;
  ctx.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  ctx.textAlign = 'right';
  for (const t of ticks) {
    const y = Math.round(Y(t.value)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.l, y);
    ctx.lineTo(w - pad.r, y);
    ctx.stroke();
    ctx.fillText(t.label, pad.l - 4, y + 4);
  }
  ctx.textAlign = 'left';
  ctx.fillText(`step ${steps}`, w - pad.r - 50, h - 5);
  ctx.fillText(log ? 'loss (log scale)' : 'loss', pad.l + 4, h - 5);
  for (const c of curves) {
    ctx.strokeStyle = c.color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    c.values.forEach((v, i) => {
      if (!(v > 0)) return;
      if (i === 0) ctx.moveTo(X(i), Y(v));
      else ctx.lineTo(X(i), Y(v));
    });
    ctx.stroke();
  }
  return { scale: log ? 'log' : 'linear', ticks };
}

/** Draws an RGB image (HWC bytes) into a canvas of its own size; CSS scales it up, pixelated. */
export function drawImage(canvas: HTMLCanvasElement, image: { width: number; height: number; data: Uint8Array }): void {
  canvas.width = image.width;
  canvas.height = image.height;
  const ctx = canvas.getContext('2d')!;
  const pixels = ctx.createImageData(image.width, image.height);
  for (let i = 0; i < image.width * image.height; i++) {
    pixels.data[i * 4] = image.data[i * 3];
    pixels.data[i * 4 + 1] = image.data[i * 3 + 1];
    pixels.data[i * 4 + 2] = image.data[i * 3 + 2];
    pixels.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
}
