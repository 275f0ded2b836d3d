/** `fr export --onnx`: the trained backbone of a checkpoint as an ONNX inference graph. */
import type { Backend } from '@fr/core';
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
