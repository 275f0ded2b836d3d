/**
 * The training loader: seeded shuffling, batching, augmentation and normalisation, with decoding
 * in worker threads so that it overlaps training. The batches are a function of the seed alone:
 * the epoch order comes from (seed, epoch) and each sample's augmentation from (seed, epoch,
 * index), so 0, 1 or 8 workers give the same bytes.
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DataError, FormatError, FrError } from '@fr/core';
import { type AugmentOptions, epochOrder } from '../augment.js';
import { type BatchJob, type BatchResult, runBatch } from './batch.js';
import { openSource, type OpenSource, type SourceSpec } from './sources.js';

export interface LoaderOptions {
  source: SourceSpec;
  batchSize: number;
  /** Image side the batches have (sources must deliver it: align or resize beforehand). */
  size: number;
  seed?: number;
  /** Worker threads; 0 decodes on the calling thread. Default 0. */
  workers?: number;
  /** Batches decoded ahead of the consumer. Default 2 x max(1, workers). */
  prefetch?: number;
  augment?: AugmentOptions;
  /** Drop undecodable samples and count them instead of failing. Default false. */
  skipBad?: boolean;
  /** Drop the last incomplete batch of an epoch. Default true. */
  dropLast?: boolean;
}

export interface Batch extends BatchResult {
  epoch: number;
  /** Index of the batch in its epoch. */
  step: number;
}

/** tsx's ESM register API (a dev dependency of the workspace), for workers running the TS sources. */
function tsxApi(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm/api')).href;
}

const ERRORS: Record<string, new (m: string) => Error> = { DataError, FormatError, FrError };

export class Loader {
  /** Bad samples skipped so far, with their reasons (when skipBad). */
  readonly skipped: { index: number; message: string }[] = [];
  private workers: Worker[] = [];
  private pending = new Map<number, { resolve: (r: BatchResult) => void; reject: (e: Error) => void }>();
  private nextId = 0;

  private constructor(private readonly o: Required<Omit<LoaderOptions, 'augment'>> & { augment: AugmentOptions }, readonly source: OpenSource) {}

  static async create(options: LoaderOptions): Promise<Loader> {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new DataError(`Loader: batchSize must be a positive integer, got ${options.batchSize}`);
    const workers = options.workers ?? 0;
    const o = {
      source: options.source, batchSize: options.batchSize, size: options.size, seed: options.seed ?? 0, workers,
      prefetch: options.prefetch ?? 2 * Math.max(1, workers), augment: options.augment ?? {}, skipBad: options.skipBad ?? false, dropLast: options.dropLast ?? true,
    };
    const loader = new Loader(o, await openSource(options.source));
    loader.start();
    return loader;
  }

  get length(): number { return this.source.length; }
  get numClasses(): number { return this.source.numClasses; }
  /** Batches per epoch. */
  get steps(): number {
    const n = this.source.length / this.o.batchSize;
    return this.o.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  private start(): void {
    // In the source tree (tests, tsx) the worker is TypeScript; tsx loads it.
    const ts = import.meta.url.endsWith('.ts');
    const url = new URL(ts ? './worker.ts' : './worker.js', import.meta.url);
    const workerData = { spec: this.o.source, options: { seed: this.o.seed, size: this.o.size, augment: this.o.augment, skipBad: this.o.skipBad } };
    for (let w = 0; w < this.o.workers; w++) {
      // A TypeScript entry is imported from a small eval'd script so that tsx's hooks apply to it.
      const worker = ts
        ? new Worker(`import(${JSON.stringify(tsxApi())}).then((m) => { m.register(); return import(${JSON.stringify(url.href)}); })`, { eval: true, workerData, execArgv: ['--conditions=@fr/source'] })
        : new Worker(url, { workerData });
      worker.on('message', (m: { id: number; result?: BatchResult; error?: { name: string; message: string } }) => {
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        if (m.error) p.reject(new (ERRORS[m.error.name] ?? Error)(m.error.message));
        else p.resolve(m.result!);
      });
      worker.on('error', (e) => { for (const p of this.pending.values()) p.reject(e); this.pending.clear(); });
      worker.unref();
      this.workers.push(worker);
    }
  }

  private run(job: BatchJob, slot: number): Promise<BatchResult> {
    if (this.workers.length === 0) {
      return runBatch(this.source, job, { seed: this.o.seed, size: this.o.size, augment: this.o.augment, skipBad: this.o.skipBad });
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[slot % this.workers.length].postMessage({ id, job });
    });
  }

  /** The batches of one epoch, in order, with up to `prefetch` decoded ahead. */
  async *epoch(epoch: number): AsyncGenerator<Batch> {
    const order = epochOrder(this.source.length, this.o.seed, epoch);
    const steps = this.steps;
    const inFlight: Promise<BatchResult>[] = [];
    let issued = 0;
    const issue = () => {
      const s = issued++;
      const indices = Array.from(order.subarray(s * this.o.batchSize, Math.min(order.length, (s + 1) * this.o.batchSize)));
      const p = this.run({ indices, epoch }, s);
      p.catch(() => undefined); // surfaced when awaited in order
      inFlight.push(p);
    };
    while (issued < steps && inFlight.length < this.o.prefetch) issue();
    for (let step = 0; step < steps; step++) {
      const r = await inFlight.shift()!;
      if (issued < steps) issue();
      this.skipped.push(...r.errors);
      yield { ...r, epoch, step };
    }
  }

  /** Stops the worker threads. */
  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers = [];
  }
}
