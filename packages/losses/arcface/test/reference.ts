/** Float64 references of ArcFace, written from the formulas, for inputs the golden files lack. */

export interface Problem {
  x: Float32Array;
  w: Float32Array;
  labels: Int32Array;
  B: number;
  D: number;
  C: number;
}

const THETA_MAX = 3.14159;

function normalizeRows(a: Float32Array, rows: number, cols: number): { n: Float64Array; norms: Float64Array } {
  const n = new Float64Array(rows * cols);
  const norms = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < cols; c++) s += a[r * cols + c] ** 2;
    norms[r] = Math.max(Math.sqrt(s), 1e-12);
    for (let c = 0; c < cols; c++) n[r * cols + c] = a[r * cols + c] / norms[r];
  }
  return { n, norms };
}

/** Loss and d loss / d x of ArcFace with the given gradient rule (mean over the batch). */
export function arcfaceReference(p: Problem, s: number, m: number, rule: 'detached' | 'exact'): { loss: number; gx: Float64Array } {
  const { B, D, C } = p;
  const xs = normalizeRows(p.x, B, D);
  const ws = normalizeRows(p.w, C, D);
  const gx = new Float64Array(B * D);
  let loss = 0;
  for (let b = 0; b < B; b++) {
    const y = p.labels[b];
    const cos = new Float64Array(C);
    for (let j = 0; j < C; j++) {
      let d = 0;
      for (let k = 0; k < D; k++) d += xs.n[b * D + k] * ws.n[j * D + k];
      cos[j] = d;
    }
    const logits = new Float64Array(C);
    const slope = new Float64Array(C).fill(s);
    for (let j = 0; j < C; j++) {
      const c = cos[j];
      if (rule === 'detached') {
        const cc = Math.min(Math.max(c, -1 + 1e-5), 1 - 1e-5);
        logits[j] = j === y ? s * Math.cos(Math.min(Math.max(Math.acos(cc) + m, 1e-5), THETA_MAX)) : s * cc;
      } else {
        const cc = Math.min(Math.max(c, -1), 1);
        if (j !== y) logits[j] = s * cc;
        else if (cc > Math.cos(Math.PI - m)) {
          logits[j] = s * Math.cos(Math.acos(cc) + m);
          slope[j] = s * (Math.cos(m) + (cc * Math.sin(m)) / Math.sqrt(Math.max(1 - cc * cc, 1e-6)));
        } else logits[j] = s * (cc - m * Math.sin(m));
      }
    }
    const max = Math.max(...logits);
    let sum = 0;
    for (let j = 0; j < C; j++) sum += Math.exp(logits[j] - max);
    const lse = max + Math.log(sum);
    loss += (lse - logits[y]) / B;
    // d loss / d xn = sum_j dcos_j * wn_j; then through x / |x|.
    const gxn = new Float64Array(D);
    for (let j = 0; j < C; j++) {
      const dcos = ((Math.exp(logits[j] - lse) - (j === y ? 1 : 0)) * slope[j]) / B;
      for (let k = 0; k < D; k++) gxn[k] += dcos * ws.n[j * D + k];
    }
    let dot = 0;
    for (let k = 0; k < D; k++) dot += gxn[k] * xs.n[b * D + k];
    for (let k = 0; k < D; k++) gx[b * D + k] = (gxn[k] - dot * xs.n[b * D + k]) / xs.norms[b];
  }
  return { loss, gx };
}
