/** The HTML report of a run or a comparison: config, curves, verification tables, ROC, histograms. */
import { writeFileAtomic } from '@fr/core/node';
import { rocSvg, scoreHistogramSvg, type RocCurve } from '@fr/eval';
import type { TrainConfig } from './config.js';
import type { VerificationReport } from './evaluate.js';
import type { LogEntry } from './train.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/** A small line chart of one series over steps. */
export function lineChartSvg(title: string, xs: readonly number[], ys: readonly number[], yLabel: string): string {
  const W = 480, H = 260, x0 = 60, y0 = 30, w = W - x0 - 16, h = H - y0 - 44;
  const finite = ys.filter(Number.isFinite);
  if (xs.length === 0 || finite.length === 0) return '';
  const xMin = xs[0], xMax = Math.max(xs[xs.length - 1], xMin + 1);
  const yMin = Math.min(0, ...finite), yMax = Math.max(...finite) || 1;
  const px = (x: number) => (x0 + ((x - xMin) / (xMax - xMin)) * w).toFixed(1);
  const py = (y: number) => (y0 + (1 - (y - yMin) / (yMax - yMin || 1)) * h).toFixed(1);
  const points = xs.map((x, i) => (Number.isFinite(ys[i]) ? `${px(x)},${py(ys[i])}` : '')).filter(Boolean).join(' ');
  const ticks = [0, 0.5, 1].map((t) => {
    const v = yMin + t * (yMax - yMin);
    return `<text x="${x0 - 4}" y="${py(v)}" text-anchor="end" dominant-baseline="middle">${v.toPrecision(3)}</text>`;
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`
    + `<text x="${W / 2}" y="18" text-anchor="middle" font-weight="bold">${esc(title)}</text>`
    + `<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#333"/>${ticks}`
    + `<text x="${x0}" y="${y0 + h + 14}">${xMin}</text><text x="${x0 + w}" y="${y0 + h + 14}" text-anchor="end">${xMax}</text>`
    + `<text x="${x0 + w / 2}" y="${y0 + h + 32}" text-anchor="middle">step</text>`
    + `<text transform="translate(14 ${y0 + h / 2}) rotate(-90)" text-anchor="middle">${esc(yLabel)}</text>`
    + `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="${points}"/></svg>`;
}

function rocOf(r: VerificationReport): RocCurve {
  return { fpr: Float64Array.from(r.roc.fpr), tpr: Float64Array.from(r.roc.tpr), thresholds: new Float64Array(r.roc.fpr.length) };
}

export function verificationTable(rows: readonly { name: string; r: VerificationReport }[]): string {
  const fars = rows[0]?.r.tarAtFar.map((t) => t.far) ?? [];
  const head = `<tr><th></th><th>set</th><th>accuracy (mean ± std, 10 folds)</th><th>AUC</th><th>EER</th>${fars.map((f) => `<th>TAR@FAR=${f.toExponential(0)}</th>`).join('')}</tr>`;
  const body = rows.map(({ name, r }) =>
    `<tr><td>${esc(name)}</td><td>${esc(r.set)}</td><td>${pct(r.accuracyMean)} ± ${pct(r.accuracyStd)}</td><td>${r.auc.toFixed(4)}</td><td>${pct(r.eer)}</td>${r.tarAtFar.map((t) => `<td>${pct(t.tar)}</td>`).join('')}</tr>`).join('');
  return `<table>${head}${body}</table>`;
}

export function plotsFor(rows: readonly { name: string; r: VerificationReport }[]): string {
  const roc = rocSvg(rows.map(({ name, r }) => ({ label: name, roc: rocOf(r) })), { title: 'ROC', logFpr: true, minFpr: 1e-4 });
  const hists = rows.map(({ name, r }) => {
    const same = r.scores.filter((_, i) => r.issame[i]);
    const diff = r.scores.filter((_, i) => !r.issame[i]);
    return scoreHistogramSvg(same, diff, { title: `similarities: ${name}`, range: [-1, 1] });
  });
  return [roc, ...hists].join('\n');
}

const STYLE = `body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}pre{background:#f5f5f5;padding:1em;overflow:auto}svg{margin:0.5em}`;

export async function writeReport(
  path: string,
  run: {
    config: TrainConfig; backend: string; losses: LogEntry[]; evaluations: { step: number; results: VerificationReport[] }[]; baseline: VerificationReport[];
    /** The memory plan as printed at the start of the run. */
    memory?: readonly string[];
  },
): Promise<void> {
  const steps = run.losses.map((l) => l.step);
  const last = run.evaluations.at(-1);
  const evalRows = run.evaluations.flatMap((e) => e.results.map((r) => ({ name: `step ${e.step}`, r })));
  const finalRows = [...(last?.results.map((r) => ({ name: `${run.config.loss.name} (step ${last.step})`, r })) ?? []), ...run.baseline.map((r) => ({ name: 'raw pixels', r }))];
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>fr train: ${esc(run.config.loss.name)}</title><style>${STYLE}</style></head><body>
<h1>Training report: ${esc(run.config.backbone.name)} + ${esc(run.config.loss.name)}</h1>
<p>Backend: ${esc(run.backend)}. Steps: ${run.losses.length}. Final loss: ${run.losses.at(-1)?.loss.toFixed(4) ?? 'n/a'}.</p>
<h2>Curves</h2>
${lineChartSvg('loss', steps, run.losses.map((l) => l.loss), 'loss')}
${lineChartSvg('learning rate', steps, run.losses.map((l) => l.lr), 'lr')}
<h2>Verification</h2>
${evalRows.length ? verificationTable([...evalRows, ...run.baseline.map((r) => ({ name: 'raw pixels', r }))]) : '<p>No verification set was configured.</p>'}
${finalRows.some((x) => x.r.scores) ? plotsFor(finalRows.filter((x) => x.r.scores)) : ''}
${run.memory?.length ? `<h2>Memory plan</h2>\n<pre>${esc(run.memory.join('\n'))}</pre>` : ''}
<h2>Config</h2>
<pre>${esc(JSON.stringify(run.config, null, 2))}</pre>
</body></html>`;
  await writeFileAtomic(path, html);
}

export async function writeComparisonReport(
  path: string,
  rows: readonly { name: string; r: VerificationReport }[],
  config: TrainConfig,
): Promise<void> {
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>fr compare</title><style>${STYLE}</style></head><body>
<h1>Loss comparison: ${esc(config.backbone.name)}, ${rows.length} runs</h1>
<p>Same backbone, data, seed and budget for every loss.</p>
${verificationTable(rows)}
${plotsFor(rows)}
<h2>Base config</h2><pre>${esc(JSON.stringify(config, null, 2))}</pre></body></html>`;
  await writeFileAtomic(path, html);
}
