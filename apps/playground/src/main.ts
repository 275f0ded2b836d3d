/**
 * The page: a backend badge, View 1 (two loss panels training a 2-d embedding side by side) and
 * View 2 (speed on the 112x112 pipeline). `window.frPlayground` drives the same code as the buttons.
 */
import './style.css';
import { chooseBackend, type BackendChoice } from './backend.js';
import { controlsFor, defaultParams, LOSSES, lossEntry, startParams, type Control } from './losses.js';
import { classColor, drawCurves, drawEmbedding } from './plot.js';
import { SESSION_DEFAULTS, TrainSession, type Snapshot } from './session.js';
import { BACKBONES, runSpeedTest, type SpeedResult } from './speed.js';
import type { Spread } from './stats.js';

const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document): T => root.querySelector<T>(sel)!;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

const fmt = (v: number, digits = 3) => (Number.isInteger(v) ? String(v) : v.toFixed(digits).replace(/0+$/, '').replace(/\.$/, ''));

// ---------------------------------------------------------------------------------------------
// View 1: a panel is one loss with its controls, picture, curve and numbers.

interface Settings {
  identities: number;
  imagesPerIdentity: number;
  size: number;
  embeddingDim: 2 | 3;
  lr: number;
  seed: number;
  steps: number;
}

class Panel {
  readonly root: HTMLElement;
  lossName: string;
  params: Record<string, unknown>;
  session: TrainSession | null = null;
  snapshot: Snapshot | null = null;
  private readonly controls: HTMLElement;
  private readonly picture: HTMLCanvasElement;
  private readonly curve: HTMLCanvasElement;
  private readonly numbers: HTMLElement;
  private readonly status: HTMLElement;
  readonly trainButton: HTMLButtonElement;

  constructor(readonly index: number, lossName: string, private readonly color: string) {
    this.lossName = lossName;
    this.params = startParams(lossEntry(lossName));
    const select = el('select', { 'data-role': 'loss', 'aria-label': 'loss' }, ...LOSSES.map((l) => el('option', { value: l.loss.name }, l.label)));
    select.value = lossName;
    select.addEventListener('change', () => this.setLoss(select.value));
    const reset = el('button', { type: 'button', class: 'small', title: "the paper's defaults from the loss's schema" }, 'paper defaults');
    reset.addEventListener('click', () => this.setParams(defaultParams(lossEntry(this.lossName))));
    this.trainButton = el('button', { type: 'button', 'data-role': 'train' }, 'Train');
    this.controls = el('div', { class: 'controls' });
    this.picture = el('canvas', { class: 'embedding', 'data-role': 'embedding' });
    this.curve = el('canvas', { class: 'curve', 'data-role': 'curve' });
    this.numbers = el('div', { class: 'numbers', 'data-role': 'numbers' });
    this.status = el('div', { class: 'status', 'data-role': 'status' }, 'not trained yet');
    this.root = el('section', { class: 'panel', 'data-panel': String(index) },
      el('div', { class: 'panel-head' }, el('span', { class: 'swatch', style: `background:${color}` }), select, reset, this.trainButton),
      this.controls,
      el('div', { class: 'plots' }, this.picture, el('div', { class: 'side' }, this.curve, this.numbers)),
      this.status,
    );
    this.renderControls();
    this.draw();
  }

  setLoss(name: string): void {
    this.lossName = name;
    ($('select[data-role=loss]', this.root) as HTMLSelectElement).value = name;
    this.params = startParams(lossEntry(name));
    this.renderControls();
  }

  setParams(params: Record<string, unknown>): void {
    this.params = { ...startParams(lossEntry(this.lossName)), ...params };
    this.renderControls();
  }

  private renderControls(): void {
    this.controls.replaceChildren(...controlsFor(lossEntry(this.lossName)).map((c) => this.control(c)));
  }

  private control(c: Control): HTMLElement {
    const label = el('label', { title: c.description });
    const value = this.params[c.name];
    if (c.kind === 'number') {
      const out = el('output', {}, fmt(Number(value)));
      const input = el('input', { type: 'range', name: c.name, min: String(c.min), max: String(c.max), step: String(c.step) });
      input.value = String(value);
      input.addEventListener('input', () => {
        this.params[c.name] = Number(input.value);
        out.textContent = fmt(Number(input.value));
      });
      label.append(el('span', { class: 'name' }, c.name), input, out);
    } else if (c.kind === 'enum') {
      const select = el('select', { name: c.name }, ...c.options.map((o) => el('option', { value: o }, o)));
      select.value = String(value);
      select.addEventListener('change', () => { this.params[c.name] = select.value; });
      label.append(el('span', { class: 'name' }, c.name), select);
    } else {
      const input = el('input', { type: 'checkbox', name: c.name });
      input.checked = Boolean(value);
      input.addEventListener('change', () => { this.params[c.name] = input.checked; });
      label.append(el('span', { class: 'name' }, c.name), input);
    }
    return label;
  }

  /** A fresh session with the current loss, parameters and settings. */
  start(backend: BackendChoice, s: Settings): TrainSession {
    this.session?.dispose();
    this.snapshot = null;
    this.session = new TrainSession(backend.backend, {
      loss: this.lossName, params: this.params, identities: s.identities, imagesPerIdentity: s.imagesPerIdentity, size: s.size,
      embeddingDim: s.embeddingDim, seed: s.seed, lr: s.lr,
    });
    this.setStatus(`training ${lossEntry(this.lossName).label} on ${s.identities} identities x ${s.imagesPerIdentity} images (${s.size}x${s.size})`);
    return this.session;
  }

  setStatus(text: string): void {
    this.status.textContent = text;
  }

  async refresh(): Promise<void> {
    if (!this.session) return;
    this.snapshot = await this.session.snapshot();
    this.draw();
  }

  draw(): void {
    const s = this.session, snap = this.snapshot;
    drawCurves(this.curve, s ? [{ values: s.losses, color: this.color, label: this.lossName }] : []);
    if (!s || !snap) {
      drawEmbedding(this.picture, { embeddings: new Float32Array(0), labels: new Int32Array(0), weights: new Float32Array(0), numClasses: 0, dim: 2 });
      this.numbers.replaceChildren(el('p', { class: 'hint' }, 'Press Train: each dot is a face image, normalised; each ray is a class centre (its normalised class weight).'));
      return;
    }
    const dim = s.options.embeddingDim;
    drawEmbedding(this.picture, { embeddings: snap.embeddings, labels: snap.labels, weights: snap.weights, numClasses: s.options.identities, dim, yaw: 0.6 + snap.step * 0.01 });
    this.numbers.replaceChildren(spreadTable(snap.spread, snap.step, s.losses[s.losses.length - 1]));
  }
}

function spreadTable(spread: Spread, step: number, loss: number): HTMLElement {
  const rows = spread.perClass.map((deg, c) =>
    el('tr', {}, el('td', {}, el('span', { class: 'chip', style: `background:${classColor(c)}` }), `class ${c}`), el('td', { class: 'num' }, `${deg.toFixed(1)}°`)));
  return el('div', {},
    el('table', { class: 'spread' },
      el('thead', {}, el('tr', {}, el('th', {}, 'angle to centre'), el('th', { class: 'num' }, 'mean'))),
      el('tbody', {}, ...rows),
      el('tfoot', {},
        el('tr', {}, el('td', {}, 'all classes'), el('td', { class: 'num', 'data-role': 'mean-spread' }, `${spread.mean.toFixed(2)}°`)),
        el('tr', {}, el('td', {}, 'nearest centre = own'), el('td', { class: 'num' }, `${(spread.accuracy * 100).toFixed(0)}%`)),
        el('tr', {}, el('td', {}, 'closest two centres'), el('td', { class: 'num' }, `${spread.minCentreAngle.toFixed(1)}°`)),
        el('tr', {}, el('td', {}, `loss at step ${step}`), el('td', { class: 'num' }, loss.toFixed(3))),
      )));
}

// ---------------------------------------------------------------------------------------------

export interface RunOptions {
  loss: string;
  params?: Record<string, unknown>;
  steps: number;
  /** Which panel shows the run (0 left, 1 right). */
  panel?: 0 | 1;
  identities?: number;
  imagesPerIdentity?: number;
  size?: number;
  embeddingDim?: 2 | 3;
  seed?: number;
  lr?: number;
}

export interface RunResult {
  backend: string;
  adapter: string;
  loss: string;
  params: Record<string, unknown>;
  steps: number;
  losses: number[];
  spread: Spread;
  msPerStep: number;
}

export interface PlaygroundHook {
  /** Resolves once the backend is chosen and the page is drawn. */
  ready: Promise<{ backend: string; adapter: string; fallbackReason?: string }>;
  run(o: RunOptions): Promise<RunResult>;
  speed(o: { loss: string; params?: Record<string, unknown>; backbone?: 'mobilefacenet' | 'iresnet18'; batch?: number; steps?: number }): Promise<SpeedResult>;
  show(view: 'embedding' | 'speed'): void;
}

declare global {
  interface Window {
    frPlayground: PlaygroundHook;
  }
}

async function main(): Promise<void> {
  const app = $('#app');
  const badge = el('span', { id: 'backend', 'data-backend': 'pending' }, 'choosing a backend...');
  const note = el('p', { id: 'fallback-note', class: 'note', hidden: '' });
  const tabs = el('nav', { class: 'tabs' },
    el('button', { type: 'button', 'data-view': 'embedding', class: 'active' }, 'Embedding'),
    el('button', { type: 'button', 'data-view': 'speed' }, 'Speed test'));
  app.append(el('header', {}, el('h1', {}, '@fr playground'), badge, tabs), note);

  const search = new URLSearchParams(location.search);
  const asked = search.get('backend');
  const backend = await chooseBackend(asked === 'cpu' || asked === 'wasm' ? asked : 'webgpu');
  badge.dataset.backend = backend.kind;
  badge.textContent = `${{ webgpu: 'WebGPU', wasm: 'WebAssembly', cpu: 'CPU' }[backend.kind]} · ${backend.description}`;
  badge.title = backend.description;
  if (backend.fallbackReason) {
    note.hidden = false;
    note.textContent = `WebGPU is not available here (${backend.fallbackReason}); running on the CPU reference backend, which is much slower.`;
  }

  // View 1.
  const settingsForm = el('form', { class: 'settings', onsubmit: 'return false' });
  const field = (name: string, label: string, input: HTMLElement) => el('label', {}, el('span', { class: 'name' }, label), input);
  const number = (name: string, value: number, min: number, max: number, step = 1) => {
    const i = el('input', { type: 'number', name, min: String(min), max: String(max), step: String(step) });
    i.value = String(value);
    return i;
  };
  const choice = (name: string, options: (string | number)[], value: string | number) => {
    const s = el('select', { name }, ...options.map((o) => el('option', { value: String(o) }, String(o))));
    s.value = String(value);
    return s;
  };
  settingsForm.append(
    field('identities', 'identities', number('identities', SESSION_DEFAULTS.identities, 2, 16)),
    field('imagesPerIdentity', 'images each', number('imagesPerIdentity', SESSION_DEFAULTS.imagesPerIdentity, 2, 64)),
    field('size', 'image size', choice('size', [16, 24, 32], SESSION_DEFAULTS.size)),
    field('embeddingDim', 'embedding', choice('embeddingDim', [2, 3], SESSION_DEFAULTS.embeddingDim)),
    field('lr', 'SGD lr', number('lr', SESSION_DEFAULTS.lr, 0.001, 1, 0.001)),
    field('seed', 'seed', number('seed', SESSION_DEFAULTS.seed, 0, 1e6)),
    field('steps', 'steps', number('steps', 100, 1, 5000)),
  );
  const trainBoth = el('button', { type: 'button', id: 'train-both', class: 'primary' }, 'Train both');
  const stop = el('button', { type: 'button', id: 'stop' }, 'Stop');
  settingsForm.append(trainBoth, stop);
  const readSettings = (): Settings => {
    const v = (n: string) => Number((settingsForm.elements.namedItem(n) as HTMLInputElement).value);
    return { identities: v('identities'), imagesPerIdentity: v('imagesPerIdentity'), size: v('size'), embeddingDim: v('embeddingDim') === 3 ? 3 : 2, lr: v('lr'), seed: v('seed'), steps: v('steps') };
  };
  const writeSettings = (s: Partial<Settings>) => {
    for (const [k, val] of Object.entries(s)) {
      const input = settingsForm.elements.namedItem(k) as HTMLInputElement | null;
      if (input && val !== undefined) input.value = String(val);
    }
  };
  const panels = [new Panel(0, 'arcface', '#2563eb'), new Panel(1, 'normface', '#db2777')];
  const viewEmbedding = el('main', { id: 'view-embedding', class: 'view' },
    el('p', { class: 'lead' }, 'A small conv network (smallnet: two conv3x3 stride-2 stages of 8 and 16 channels, BN, PReLU, a linear layer) maps synthetic face identities to a 2-d embedding, trained full-batch with SGD. Train two losses side by side and watch the classes spread around the circle: margins pull each class tighter around its centre.'),
    settingsForm, el('div', { class: 'panels' }, ...panels.map((p) => p.root)));

  let stopRequested = false;
  let busy = false;
  const setBusy = (b: boolean) => {
    busy = b;
    for (const btn of [trainBoth, ...panels.map((p) => p.trainButton), speedButton]) btn.disabled = b;
  };
  stop.addEventListener('click', () => { stopRequested = true; });

  /** Trains the given panels for `steps` steps, interleaved so they move together. */
  const train = async (which: Panel[], s: Settings) => {
    stopRequested = false;
    const sessions = which.map((p) => p.start(backend, s));
    const started = performance.now();
    const drawEvery = Math.max(1, Math.min(10, Math.round(s.steps / 40)));
    for (let step = 1; step <= s.steps && !stopRequested; step++) {
      for (const session of sessions) await session.trainStep();
      if (step % drawEvery === 0 || step === s.steps) {
        for (const p of which) await p.refresh();
        await new Promise((r) => requestAnimationFrame(() => r(null)));
      }
    }
    const ms = (performance.now() - started) / Math.max(1, sessions[0].step);
    for (const p of which) {
      if (p.session!.step % drawEvery !== 0) await p.refresh();
      p.setStatus(`${lossEntry(p.lossName).label}: ${p.session!.step} steps of ${p.session!.numSamples} images, ${(ms / which.length).toFixed(0)} ms per step on ${backend.kind}`);
    }
    return ms / which.length;
  };
  const guarded = async <T>(fn: () => Promise<T>): Promise<T> => {
    if (busy) throw new Error('the playground is busy with another run');
    setBusy(true);
    try {
      return await fn();
    } finally {
      setBusy(false);
    }
  };
  trainBoth.addEventListener('click', () => void guarded(() => train(panels, readSettings())).catch(report));
  for (const p of panels) p.trainButton.addEventListener('click', () => void guarded(() => train([p], readSettings())).catch(report));

  // View 2.
  const speedForm = el('form', { class: 'settings', onsubmit: 'return false' },
    field('loss', 'loss', choice('loss', LOSSES.map((l) => l.loss.name), 'arcface')),
    field('backbone', 'backbone', el('select', { name: 'backbone' }, ...Object.entries(BACKBONES).map(([k, b]) => el('option', { value: k }, b.label)))),
    field('batch', 'batch', choice('batch', [2, 4, 8, 16, 32], 2)),
    field('steps', 'timed steps', number('steps', 2, 1, 100)),
  );
  const speedButton = el('button', { type: 'button', id: 'run-speed', class: 'primary' }, 'Run speed test');
  speedForm.append(speedButton);
  const speedLog = el('div', { class: 'speed-log', 'data-role': 'speed-log' });
  const speedResult = el('div', { class: 'speed-result', 'data-role': 'speed-result' });
  const viewSpeed = el('main', { id: 'view-speed', class: 'view', hidden: '' },
    el('p', { class: 'lead' }, 'Training speed on this device: the 112x112 pipeline (augmentation, upload, forward, loss, backward, clip at norm 5, SGD) with a real backbone, 64 classes, 512-d embedding. The first step compiles the shaders and is reported apart.'),
    speedForm, speedResult, speedLog);
  const speed: PlaygroundHook['speed'] = (o) => guarded(async () => {
    const backbone = o.backbone ?? 'mobilefacenet', batch = o.batch ?? 2, steps = o.steps ?? 2;
    speedLog.replaceChildren();
    speedResult.replaceChildren(el('p', {}, `running ${backbone} + ${o.loss}, batch ${batch}...`));
    const result = await runSpeedTest(backend.backend, {
      loss: o.loss, params: o.params, backbone, batch, steps,
      onStep: (i, ms) => speedLog.append(el('div', {}, i === 0 ? `warm-up step (compiles shaders): ${(ms / 1000).toFixed(2)} s` : `step ${i}: ${(ms / 1000).toFixed(2)} s`)),
    });
    speedResult.replaceChildren(
      el('p', { class: 'big', 'data-role': 'images-per-second', 'data-value': String(result.imagesPerSecond) }, `${result.imagesPerSecond < 10 ? result.imagesPerSecond.toFixed(2) : result.imagesPerSecond.toFixed(1)} images/s`),
      el('p', {}, `${BACKBONES[backbone].label}, ${(result.parameters / 1e6).toFixed(2)} M trainable parameters with the head; ${lossEntry(result.loss).label}; batch ${batch}; ${(result.msPerStep / 1000).toFixed(2)} s per step on ${backend.kind} (${backend.description}).`),
    );
    return result;
  });
  speedButton.addEventListener('click', () => {
    const v = (n: string) => (speedForm.elements.namedItem(n) as HTMLInputElement).value;
    void speed({ loss: v('loss'), params: startParams(lossEntry(v('loss'))), backbone: v('backbone') as 'mobilefacenet', batch: Number(v('batch')), steps: Number(v('steps')) }).catch(report);
  });

  const errorBox = el('pre', { id: 'error', class: 'error', hidden: '' });
  function report(e: unknown) {
    errorBox.hidden = false;
    errorBox.textContent = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  }
  app.append(viewEmbedding, viewSpeed, errorBox);

  const show = (view: 'embedding' | 'speed') => {
    viewEmbedding.hidden = view !== 'embedding';
    viewSpeed.hidden = view !== 'speed';
    for (const b of tabs.querySelectorAll<HTMLButtonElement>('button')) b.classList.toggle('active', b.dataset.view === view);
    if (view === 'embedding') for (const p of panels) p.draw();
  };
  for (const b of tabs.querySelectorAll<HTMLButtonElement>('button')) b.addEventListener('click', () => show(b.dataset.view as 'embedding'));
  for (const p of panels) p.draw();

  const run: PlaygroundHook['run'] = (o) => guarded(async () => {
    show('embedding');
    const panel = panels[o.panel ?? 0];
    panel.setLoss(o.loss);
    if (o.params) panel.setParams(o.params);
    const defaults = readSettings();
    const s: Settings = { ...defaults, ...Object.fromEntries(Object.entries(o).filter(([k, v]) => k in defaults && v !== undefined)), steps: o.steps } as Settings;
    writeSettings(s);
    const msPerStep = await train([panel], s);
    const session = panel.session!;
    return {
      backend: backend.kind, adapter: backend.description, loss: panel.lossName, params: { ...panel.params }, steps: session.step,
      losses: [...session.losses], spread: panel.snapshot!.spread, msPerStep,
    };
  });

  window.frPlayground.show = show;
  window.frPlayground.run = run;
  window.frPlayground.speed = speed;
  if (search.get('view') === 'speed') show('speed');
  resolveReady({ backend: backend.kind, adapter: backend.description, fallbackReason: backend.fallbackReason });
}

let resolveReady!: (v: Awaited<PlaygroundHook['ready']>) => void;
let rejectReady!: (e: unknown) => void;
const ready = new Promise<Awaited<PlaygroundHook['ready']>>((res, rej) => { resolveReady = res; rejectReady = rej; });
const notReady = () => Promise.reject(new Error('the playground is still starting: await frPlayground.ready'));
window.frPlayground = { ready, run: notReady, speed: notReady, show: () => {} };
main().catch((e) => {
  rejectReady(e);
  document.body.append(el('pre', { class: 'error' }, String(e instanceof Error ? e.stack ?? e.message : e)));
});
