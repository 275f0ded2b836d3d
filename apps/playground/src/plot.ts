/** Canvas drawings: the embedding on the unit circle (or sphere) and the loss curve. */
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
  /** Rotation about the vertical axis for 3-d embeddings, radians. */
  yaw?: number;
}

/** Projects a unit vector: 2-d as is; 3-d rotated by yaw and tilted, returning depth in [-1, 1]. */
function project(v: Float64Array, i: number, dim: number, yaw: number): [number, number, number] {
  if (dim === 2) return [v[i * 2], v[i * 2 + 1], 1];
  const x = v[i * 3], y = v[i * 3 + 1], z = v[i * 3 + 2];
  const cx = Math.cos(yaw) * x + Math.sin(yaw) * z;
  const cz = -Math.sin(yaw) * x + Math.cos(yaw) * z;
  const tilt = 0.35;
  const cy = Math.cos(tilt) * y - Math.sin(tilt) * cz;
  const depth = Math.sin(tilt) * y + Math.cos(tilt) * cz;
  return [cx, cy, depth];
}

/**
 * Normalised embeddings as dots on the unit circle, coloured by class, with the class-centre
 * directions (normalised class weights) as rays. Dots are jittered slightly inward by sample index
 * so that points at the same angle stay visible.
 */
export function drawEmbedding(canvas: HTMLCanvasElement, p: EmbeddingPicture): void {
  const { ctx, w, h } = prepare(canvas);
  const r = Math.min(w, h) / 2 - 14;
  const cx = w / 2, cy = h / 2;
  const yaw = p.yaw ?? 0.6;
  ctx.strokeStyle = '#c9ced6';
  ctx.lineWidth = 1;
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

  const n = p.labels.length;
  const e = normalizeRows(p.embeddings, n, p.dim);
  const wn = normalizeRows(p.weights, p.numClasses, p.dim);
  for (let c = 0; c < p.numClasses; c++) {
    const [x, y, depth] = project(wn, c, p.dim, yaw);
    ctx.strokeStyle = classColor(c);
    ctx.globalAlpha = p.dim === 2 ? 0.9 : 0.45 + 0.45 * (depth + 1) / 2;
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.moveTo(cx, cy);
    ctx.lineTo(cx + x * (r + 8), cy - y * (r + 8));
    ctx.stroke();
  }
  for (let i = 0; i < n; i++) {
    const [x, y, depth] = project(e, i, p.dim, yaw);
    const radius = r * (p.dim === 2 ? 1 - 0.06 * ((i * 7) % 5) / 4 : 1);
    ctx.globalAlpha = p.dim === 2 ? 0.8 : 0.25 + 0.65 * (depth + 1) / 2;
    ctx.fillStyle = classColor(p.labels[i]);
    ctx.beginPath();
    ctx.arc(cx + x * radius, cy - y * radius, 3.2, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.globalAlpha = 1;
}

export interface Curve {
  values: readonly number[];
  color: string;
  label: string;
}

/** Loss against step, on a log scale when the values span more than a decade. */
export function drawCurves(canvas: HTMLCanvasElement, curves: readonly Curve[]): void {
  const { ctx, w, h } = prepare(canvas);
  const pad = { l: 44, r: 8, t: 8, b: 20 };
  const all = curves.flatMap((c) => c.values).filter((v) => Number.isFinite(v) && v > 0);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = '#6b7280';
  if (all.length === 0) {
    ctx.fillText('loss per step appears here', pad.l, h / 2);
    return;
  }
  const lo = Math.min(...all), hi = Math.max(...all);
  const log = hi / lo > 10;
  const f = (v: number) => (log ? Math.log10(v) : v);
  const a = f(lo), b = f(hi) === f(lo) ? f(lo) + 1 : f(hi);
  const steps = Math.max(...curves.map((c) => c.values.length), 2);
  const X = (i: number) => pad.l + ((w - pad.l - pad.r) * i) / (steps - 1);
  const Y = (v: number) => pad.t + (h - pad.t - pad.b) * (1 - (f(v) - a) / (b - a));
  ctx.strokeStyle = '#e5e7eb';
  ctx.lineWidth = 1;
  ctx.strokeRect(pad.l, pad.t, w - pad.l - pad.r, h - pad.t - pad.b);
  for (const v of [lo, hi]) ctx.fillText(v < 10 ? v.toFixed(2) : v.toFixed(1), 4, Y(v) + 4);
  ctx.fillText(`step ${steps}`, w - pad.r - 50, h - 5);
  ctx.fillText(log ? 'loss (log)' : 'loss', pad.l + 4, h - 5);
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
}
