/** Standalone SVG plots (no dependencies), to embed in an HTML report or save as .svg files. */
import type { RocCurve } from './roc.js';

export interface PlotOptions {
  width?: number;
  height?: number;
  title?: string;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const fmt = (v: number) => (Math.round(v * 100) / 100).toString();

interface Frame { x0: number; y0: number; w: number; h: number }

function frame(width: number, height: number): Frame {
  return { x0: 56, y0: 30, w: width - 56 - 16, h: height - 30 - 44 };
}

function axes(f: Frame, xTicks: [number, string][], yTicks: [number, string][], xLabel: string, yLabel: string): string {
  const parts: string[] = [`<rect x="${f.x0}" y="${f.y0}" width="${f.w}" height="${f.h}" fill="none" stroke="#333"/>`];
  for (const [x, label] of xTicks) {
    const px = fmt(f.x0 + x * f.w);
    parts.push(`<line x1="${px}" y1="${f.y0}" x2="${px}" y2="${f.y0 + f.h}" stroke="#ddd"/>`);
    parts.push(`<text x="${px}" y="${f.y0 + f.h + 14}" text-anchor="middle">${esc(label)}</text>`);
  }
  for (const [y, label] of yTicks) {
    const py = fmt(f.y0 + (1 - y) * f.h);
    parts.push(`<line x1="${f.x0}" y1="${py}" x2="${f.x0 + f.w}" y2="${py}" stroke="#ddd"/>`);
    parts.push(`<text x="${f.x0 - 4}" y="${py}" text-anchor="end" dominant-baseline="middle">${esc(label)}</text>`);
  }
  parts.push(`<text x="${f.x0 + f.w / 2}" y="${f.y0 + f.h + 32}" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text transform="translate(14 ${f.y0 + f.h / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`);
  return parts.join('');
}

function svg(width: number, height: number, title: string | undefined, body: string): string {
  const t = title ? `<text x="${width / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(title)}</text>` : '';
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`
    + `<rect width="100%" height="100%" fill="#fff"/>${t}${body}</svg>`;
}

export interface RocPlotOptions extends PlotOptions {
  /** Log-scaled FPR axis from `minFpr` to 1, the usual view for TAR@FAR. Default true. */
  logFpr?: boolean;
  minFpr?: number;
}

/** ROC curves (TPR against FPR), one polyline per named curve, with a legend. */
export function rocSvg(curves: readonly { label: string; roc: RocCurve }[], o: RocPlotOptions = {}): string {
  const width = o.width ?? 480, height = o.height ?? 400;
  const f = frame(width, height);
  const logFpr = o.logFpr ?? true;
  const minFpr = o.minFpr ?? 1e-4;
  const lo = Math.log10(minFpr);
  const xOf = (fpr: number) => logFpr ? (Math.log10(Math.max(fpr, minFpr)) - lo) / -lo : fpr;
  const xTicks: [number, string][] = logFpr
    ? Array.from({ length: -lo + 1 }, (_, i) => [i / -lo, `1e${lo + i}`])
    : [0, 0.2, 0.4, 0.6, 0.8, 1].map((v) => [v, String(v)]);
  const yTicks: [number, string][] = [0, 0.2, 0.4, 0.6, 0.8, 1].map((v) => [v, String(v)]);
  const lines = curves.map((c, k) => {
    const pts: string[] = [];
    for (let j = 0; j < c.roc.fpr.length; j++) {
      pts.push(`${fmt(f.x0 + xOf(c.roc.fpr[j]) * f.w)},${fmt(f.y0 + (1 - c.roc.tpr[j]) * f.h)}`);
    }
    const color = COLORS[k % COLORS.length];
    const ly = f.y0 + f.h - 10 - 14 * (curves.length - 1 - k);
    return `<polyline fill="none" stroke="${color}" stroke-width="1.5" points="${pts.join(' ')}"/>`
      + `<line x1="${f.x0 + f.w - 120}" y1="${ly}" x2="${f.x0 + f.w - 104}" y2="${ly}" stroke="${color}" stroke-width="2"/>`
      + `<text x="${f.x0 + f.w - 100}" y="${ly}" dominant-baseline="middle">${esc(c.label)}</text>`;
  });
  return svg(width, height, o.title ?? 'ROC', axes(f, xTicks, yTicks, logFpr ? 'FPR (log)' : 'FPR', 'TPR') + lines.join(''));
}

export interface HistogramPlotOptions extends PlotOptions {
  bins?: number;
  /** Score range; default [-1, 1] (cosine similarity). */
  range?: [number, number];
}

/** Bin counts of values in [lo, hi) with `bins` equal bins (values outside are clamped in). */
export function histogram(values: ArrayLike<number>, bins: number, lo: number, hi: number): number[] {
  const out = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) {
    const b = Math.floor(((values[i] - lo) / (hi - lo)) * bins);
    out[Math.min(bins - 1, Math.max(0, b))]++;
  }
  return out;
}

/** Overlaid histograms (as densities) of same-identity and different-identity pair scores. */
export function scoreHistogramSvg(same: ArrayLike<number>, different: ArrayLike<number>, o: HistogramPlotOptions = {}): string {
  const width = o.width ?? 480, height = o.height ?? 300;
  const bins = o.bins ?? 50;
  const [lo, hi] = o.range ?? [-1, 1];
  const f = frame(width, height);
  const hs = histogram(same, bins, lo, hi).map((c) => c / Math.max(1, same.length));
  const hd = histogram(different, bins, lo, hi).map((c) => c / Math.max(1, different.length));
  const top = Math.max(...hs, ...hd, 1e-12);
  const bw = f.w / bins;
  const bars = (h: number[], color: string) => h.map((v, i) => v === 0 ? '' :
    `<rect x="${fmt(f.x0 + i * bw)}" y="${fmt(f.y0 + f.h * (1 - v / top))}" width="${fmt(bw)}" height="${fmt(f.h * v / top)}" fill="${color}" fill-opacity="0.5"/>`).join('');
  const xTicks: [number, string][] = Array.from({ length: 5 }, (_, i) => [i / 4, fmt(lo + (i / 4) * (hi - lo))]);
  const yTicks: [number, string][] = [0, 0.5, 1].map((v) => [v, fmt(v * top)]);
  const legend = `<rect x="${f.x0 + 8}" y="${f.y0 + 6}" width="10" height="10" fill="${COLORS[0]}" fill-opacity="0.5"/><text x="${f.x0 + 22}" y="${f.y0 + 11}" dominant-baseline="middle">same (${same.length})</text>`
    + `<rect x="${f.x0 + 8}" y="${f.y0 + 22}" width="10" height="10" fill="${COLORS[1]}" fill-opacity="0.5"/><text x="${f.x0 + 22}" y="${f.y0 + 27}" dominant-baseline="middle">different (${different.length})</text>`;
  return svg(width, height, o.title ?? 'Pair similarity', axes(f, xTicks, yTicks, 'similarity', 'fraction of pairs') + bars(hd, COLORS[1]) + bars(hs, COLORS[0]) + legend);
}
