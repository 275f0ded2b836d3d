/** `fr export`: the trained backbone of a checkpoint as an ONNX inference graph or a PyTorch state_dict. */
import type { Backend } from '@fr/core';
import { torchStateDictSafetensors, type BatchCounters } from '@fr/data';
import { exportOnnx } from '@fr/onnx';
import { loadRun } from './commands.js';
import type { Plugins } from './plugins.js';

export async function exportOnnxCommand(checkpoint: string, plugins: Plugins, backend: Backend): Promise<Uint8Array> {
  const run = await loadRun(checkpoint, plugins, backend);
  return exportOnnx(run.module, {
    inputShape: run.inputShape,
    docString: JSON.stringify({ backbone: run.config.backbone, loss: run.config.loss.name }),
  });
}

/**
 * `--safetensors`: the backbone's state_dict under PyTorch's names (no prefix), loadable with
 * `load_state_dict(strict=True)`; the `num_batches_tracked` counters an import read are kept.
 */
export async function exportSafetensorsCommand(checkpoint: string, plugins: Plugins, backend: Backend): Promise<Uint8Array> {
  const run = await loadRun(checkpoint, plugins, backend);
  const counters = JSON.parse(run.meta.batchCounters ?? '{}') as BatchCounters;
  return torchStateDictSafetensors(run.module, counters, { format: 'pt', backbone: JSON.stringify(run.config.backbone) });
}
