/**
 * The page: a backend badge, View 1 (two loss panels training a 2-d embedding side by side) and
 * View 2 (speed on the 112x112 pipeline). `window.frPlayground` drives the same code as the buttons.
 */
import './style.css';
import { chooseBackend, fallbackLead, type BackendChoice } from './backend.js';
import { controlsFor, defaultParams, LOSSES, lossEntry, startParams, type Control } from './losses.js';
import { parseLossParams, type MarginTransform } from '@fr/core';
import { renderFaceStrip } from './faces.js';
import { classColor, drawCurves, drawEmbedding } from './plot.js';
import { SESSION_DEFAULTS, TrainSession, type Snapshot } from './session.js';
import { BACKBONES, runSpeedTest, type SpeedResult } from './speed.js';
import { speedNote } from './speed-note.js';
import type { Spread } from './stats.js';

const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document): T => root.querySelector<T>(sel)!;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children);
  return e;
}

/** Text with each page query (`?backend=webgpu`) set as code that never breaks across lines. */
function withQueries(text: string): (Node | string)[] {
  return text.split(/(\?backend=\w+)/).map((part, i) => (i % 2 ? el('code', { class: 'query' }, part) : part));
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
  /** The 3-d view's orientation, changed by dragging the picture. */
  private view = { yaw: 0.6, pitch: 0.35 };

  constructor(readonly index: number, lossName: string, private readonly color: string) {
    this.lossName = lossName;
    this.params = startParams(lossEntry(lossName));
    const select = el('select', { 'data-role': 'loss', 'aria-label': 'loss' }, ...LOSSES.map((l) => el('option', { value: l.loss.name }, l.label)));
    select.value = lossName;
    select.addEventListener('change', () => this.setLoss(select.value));
    select.title = 'the loss this panel trains';
    const reset = el('button', { type: 'button', class: 'small', title: "the paper's defaults from the loss's schema" }, 'paper defaults');
    reset.addEventListener('click', () => this.setParams(defaultParams(lossEntry(this.lossName))));
    this.trainButton = el('button', { type: 'button', 'data-role': 'train', title: 'train this panel alone with the settings above (a fresh network each time)' }, 'Train');
    this.controls = el('div', { class: 'controls' });
    this.picture = el('canvas', { class: 'embedding', 'data-role': 'embedding' });
    this.curve = el('canvas', { class: 'curve', 'data-role': 'curve', title: 'training loss per step' });
    this.dragToRotate();
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

  /** Dragging the 3-d picture turns the sphere (yaw with x, pitch with y). */
  private dragToRotate(): void {
    let last: { x: number; y: number } | null = null;
    this.picture.addEventListener('pointerdown', (e) => {
      if (this.session?.options.embeddingDim !== 3) return;
      last = { x: e.clientX, y: e.clientY };
      this.picture.setPointerCapture(e.pointerId);
    });
    this.picture.addEventListener('pointermove', (e) => {
      if (!last) return;
      this.view.yaw += (e.clientX - last.x) * 0.01;
      this.view.pitch = Math.max(-1.5, Math.min(1.5, this.view.pitch + (e.clientY - last.y) * 0.01));
      last = { x: e.clientX, y: e.clientY };
      this.draw();
    });
    const end = () => { last = null; };
    this.picture.addEventListener('pointerup', end);
    this.picture.addEventListener('pointercancel', end);
  }

  /** The loss's margin transform at the current parameters, for the picture; null for plain cosine logits, undefined to draw none. */
  private margin(): MarginTransform | null | undefined {
    const entry = lossEntry(this.lossName);
    if (!entry.normalizedWeights) return undefined;
    if (!entry.transform) return null;
    try {
      return entry.transform(parseLossParams(entry.loss, { ...this.params, ...entry.fixed }));
    } catch {
      return undefined;
    }
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
    const axis = drawCurves(this.curve, s ? [{ values: s.losses, color: this.color, label: this.lossName }] : []);
    this.curve.dataset.scale = axis?.scale ?? '';
    this.curve.dataset.ticks = axis ? axis.ticks.map((t) => t.label).join(' ') : '';
    if (!s || !snap) {
      drawEmbedding(this.picture, { embeddings: new Float32Array(0), labels: new Int32Array(0), weights: new Float32Array(0), numClasses: 0, dim: 2 });
      this.numbers.replaceChildren(el('p', { class: 'hint' }, 'Press Train: each dot is a face image, normalised; each ray is a class centre (its normalised class weight).'));
      return;
    }
    const dim = s.options.embeddingDim;
    const margin = this.margin();
    const drawn = drawEmbedding(this.picture, {
      embeddings: snap.embeddings, labels: snap.labels, weights: snap.weights, numClasses: s.options.identities, dim, ...this.view, margin,
    });
    Object.assign(this.picture.dataset, { dim: String(dim), yaw: this.view.yaw.toFixed(3), pitch: this.view.pitch.toFixed(3) });
    const gap = drawn.gapsDeg.length ? drawn.gapsDeg.reduce((a, b) => a + b, 0) / drawn.gapsDeg.length : NaN;
    this.picture.dataset.marginGap = Number.isNaN(gap) ? '' : gap.toFixed(2);
    this.picture.title = dim === 3
      ? margin === undefined
        ? 'the unit sphere: drag to rotate; faded dots and dashed lines are on the far side'
        : `the unit sphere: drag to rotate; faded dots and dashed lines are on the far side; the coloured loop around each centre is where its class wins with its margin, the band between neighbouring loops is the margin (mean ${gap.toFixed(1)}° to the nearest class)`
      : margin === undefined
        ? 'the unit circle: dots are images, rays are class centres'
        : `the unit circle: dots are images, rays are class centres; the coloured arc outside is where each class wins with its margin, the gaps between arcs are the margin (mean ${gap.toFixed(1)}°)`;
    this.picture.style.touchAction = dim === 3 ? 'none' : '';
    this.picture.classList.toggle('rotatable', dim === 3);
    this.numbers.replaceChildren(spreadTable(snap.spread, snap.step, s.losses[s.losses.length - 1]));
  }
}

function spreadTable(spread: Spread, step: number, loss: number): HTMLElement {
  const rows = spread.perClass.map((deg, c) =>
    el('tr', { title: `mean angle between the images of class ${c} and its centre` },
      el('td', {}, el('span', { class: 'chip', style: `background:${classColor(c)}` }), `class ${c}`), el('td', { class: 'num' }, `${deg.toFixed(1)}°`)));
  return el('div', {},
    el('table', { class: 'spread' },
      el('thead', {}, el('tr', { title: "per class, the mean angle between each image's normalised embedding and its class centre (the X2-Softmax paper's statistic): smaller is tighter" },
        el('th', {}, 'angle to centre'), el('th', { class: 'num' }, 'mean'))),
      el('tbody', {}, ...rows),
      el('tfoot', {},
        el('tr', { title: 'mean of the per-class angles' }, el('td', {}, 'all classes'), el('td', { class: 'num', 'data-role': 'mean-spread' }, `${spread.mean.toFixed(2)}°`)),
        el('tr', { title: 'share of images whose nearest class centre (largest cosine) is their own class' },
          el('td', {}, 'nearest centre = own'), el('td', { class: 'num' }, `${(spread.accuracy * 100).toFixed(0)}%`)),
        el('tr', { title: 'smallest angle between two class centres: how far apart the classes sit' },
          el('td', {}, 'closest two centres'), el('td', { class: 'num' }, `${spread.minCentreAngle.toFixed(1)}°`)),
        el('tr', { title: 'the loss of the last training step' }, el('td', {}, `loss at step ${step}`), el('td', { class: 'num' }, loss.toFixed(3))),
      )));
}

/** The lead of View 1, which names the picture of the chosen dimension. */
function embeddingLead(dim: 2 | 3): string {
  const where = dim === 2 ? 'around the unit circle' : 'over the unit sphere (drag a picture to rotate it)';
  const margin = dim === 2
    ? " The coloured arcs outside the circle are each class's decision region under its loss's margin; the gaps between them are the margin."
    : " The coloured loop around each centre bounds its class's decision region under its loss's margin; the bands between neighbouring loops are the margin.";
  return `A small conv network (smallnet: two conv3x3 stride-2 stages of 8 and 16 channels, BN, PReLU, a linear layer) maps synthetic face identities to a ${dim}-d embedding, ` +
    `trained full-batch with SGD. Train two losses side by side and watch the classes spread ${where}: margins pull each class tighter around its centre.${margin}`;
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
  ready: Promise<{ backend: string; adapter: string; fallbackReason?: string; skippedAdapter?: string }>;
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
  const fallbackNote = el('p', { id: 'fallback-note', class: 'note', hidden: '' });
  const tabs = el('nav', { class: 'tabs' },
    el('button', { type: 'button', 'data-view': 'embedding', class: 'active', title: 'train two losses side by side and watch the embedding' }, 'Embedding'),
    el('button', { type: 'button', 'data-view': 'speed', title: 'training speed of a real backbone at 112x112 on this device' }, 'Speed test'));
  app.append(el('header', {}, el('h1', {}, '@fr playground'), badge, tabs), fallbackNote);

  const search = new URLSearchParams(location.search);
  const asked = search.get('backend');
  const backend = await chooseBackend(asked === 'cpu' || asked === 'wasm' || asked === 'webgpu' ? asked : 'auto');
  badge.dataset.backend = backend.kind;
  badge.textContent = `${{ webgpu: 'WebGPU', wasm: 'WebAssembly', cpu: 'CPU' }[backend.kind]} · ${backend.description}`;
  const nature = { webgpu: backend.hardware ? 'a hardware GPU' : 'a software adapter (WebGPU emulated on the CPU)', wasm: 'the WebAssembly backend on the CPU', cpu: 'the CPU reference backend' };
  badge.title = `${backend.description}: ${nature[backend.kind]}`;
  if (backend.fallbackReason) {
    fallbackNote.hidden = false;
    fallbackNote.replaceChildren(...withQueries(`${fallbackLead(backend)} (${backend.fallbackReason}); running on ${backend.kind === 'wasm' ? 'the WebAssembly backend (SIMD kernels on the CPU)' : 'the CPU reference backend, which is much slower'}.`));
  }

  // View 1.
  const settingsForm = el('form', { class: 'settings', onsubmit: 'return false' });
  const field = (name: string, label: string, input: HTMLElement, title: string) => el('label', { title }, el('span', { class: 'name' }, label), input);
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
    field('identities', 'identities', number('identities', SESSION_DEFAULTS.identities, 2, 16), 'number of synthetic identities: the classes of the head'),
    field('imagesPerIdentity', 'images each', number('imagesPerIdentity', SESSION_DEFAULTS.imagesPerIdentity, 2, 64), 'images rendered per identity (pose, light and expression vary); every step trains on all of them'),
    field('size', 'image size', choice('size', [16, 24, 32], SESSION_DEFAULTS.size), 'side of the input images in pixels'),
    field('embeddingDim', 'embedding', choice('embeddingDim', [2, 3], SESSION_DEFAULTS.embeddingDim), 'dimension of the embedding: 2 draws a circle, 3 a sphere you can rotate'),
    field('lr', 'SGD lr', number('lr', SESSION_DEFAULTS.lr, 0.001, 1, 0.001), 'learning rate of SGD (momentum 0.9, weight decay 5e-4, gradient clipped at norm 5)'),
    field('seed', 'seed', number('seed', SESSION_DEFAULTS.seed, 0, 1e6), 'seed of the face set, the initial weights and the flips: the same seed gives the same run'),
    field('steps', 'steps', number('steps', 100, 1, 5000), 'training steps per run (one step sees every image)'),
  );
  const trainBoth = el('button', { type: 'button', id: 'train-both', class: 'primary', title: 'train both panels from scratch, step by step in turn' }, 'Train both');
  const stop = el('button', { type: 'button', id: 'stop', title: 'stop after the current step' }, 'Stop');
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
  const lead = el('p', { class: 'lead', 'data-role': 'lead' }, embeddingLead(2));
  const faces = el('div', { class: 'faces', 'data-role': 'faces' });
  const viewEmbedding = el('main', { id: 'view-embedding', class: 'view' },
    lead, settingsForm,
    el('section', { class: 'inputs', title: 'the training images: a few of each identity, under its class colour' }, el('h2', {}, 'Input faces'), faces),
    el('div', { class: 'panels' }, ...panels.map((p) => p.root)));
  /** The lead and the face strip follow the settings. */
  const syncSettings = () => {
    const s = readSettings();
    lead.textContent = embeddingLead(s.embeddingDim);
    renderFaceStrip(faces, s);
  };
  settingsForm.addEventListener('change', syncSettings);

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
    field('loss', 'loss', choice('loss', LOSSES.map((l) => l.loss.name), 'arcface'), 'the loss head on top of the backbone (64 classes)'),
    field('backbone', 'backbone', el('select', { name: 'backbone' }, ...Object.entries(BACKBONES).map(([k, b]) => el('option', { value: k }, b.label))), 'the network timed, at 112x112 input'),
    field('batch', 'batch', choice('batch', [2, 4, 8, 16, 32], 2), 'images per step'),
    field('steps', 'timed steps', number('steps', 2, 1, 100), 'steps timed after the warm-up step'),
  );
  const speedButton = el('button', { type: 'button', id: 'run-speed', class: 'primary', title: 'one warm-up step, then the timed steps' }, 'Run speed test');
  speedForm.append(speedButton);
  const speedLog = el('div', { class: 'speed-log', 'data-role': 'speed-log' });
  const speedResult = el('div', { class: 'speed-result', 'data-role': 'speed-result' });
  const note = speedNote(backend);
  const viewSpeed = el('main', { id: 'view-speed', class: 'view', hidden: '' },
    el('p', { class: 'lead' }, 'Training speed on this device: the 112x112 pipeline (augmentation, upload, forward, loss, backward, clip at norm 5, SGD) with a real backbone, 64 classes, 512-d embedding. The first step compiles the shaders and is reported apart.'),
    el('p', { class: `adapter ${note.kind}`, 'data-role': 'adapter', 'data-kind': note.kind }, ...withQueries(note.text)),
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
  syncSettings();

  const run: PlaygroundHook['run'] = (o) => guarded(async () => {
    show('embedding');
    const panel = panels[o.panel ?? 0];
    panel.setLoss(o.loss);
    if (o.params) panel.setParams(o.params);
    const defaults = readSettings();
    const s: Settings = { ...defaults, ...Object.fromEntries(Object.entries(o).filter(([k, v]) => k in defaults && v !== undefined)), steps: o.steps } as Settings;
    writeSettings(s);
    syncSettings();
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
  resolveReady({ backend: backend.kind, adapter: backend.description, fallbackReason: backend.fallbackReason, skippedAdapter: backend.skippedAdapter });
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
