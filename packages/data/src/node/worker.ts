/** Worker thread of the loader: rebuilds the source from its description and runs batch jobs. */
import { parentPort, workerData } from 'node:worker_threads';
import { runBatch, type BatchJob } from './batch.js';
import { openSource } from './sources.js';

const { spec, options } = workerData;
const source = openSource(spec);
parentPort!.on('message', async (msg: { id: number; job: BatchJob }) => {
  try {
    const r = await runBatch(await source, msg.job, options);
    parentPort!.postMessage({ id: msg.id, result: r }, [r.images.buffer as ArrayBuffer]);
  } catch (e) {
    const err = e as Error;
    parentPort!.postMessage({ id: msg.id, error: { name: err.name, message: err.message } });
  }
});
