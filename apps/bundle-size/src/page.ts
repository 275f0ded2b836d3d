/**
 * What a web page that trains an ArcFace head on WebGPU imports: the browser entry of the WebGPU
 * backend, the loss with its parameter parsing, the tape and an optimizer. Both bundlers build
 * this file; its size is the budget the test holds.
 */
import { requestWebGpuBackend } from '@fr/backend-webgpu';
import { arcface } from '@fr/arcface';
import { backward, createRng, parseLossParams, sgd, tensor, tidy } from '@fr/core';

async function trainStep(): Promise<number> {
  const backend = await requestWebGpuBackend();
  const params = parseLossParams(arcface, { s: 32 });
  const head = arcface.createHead({ backend, numClasses: 10, embeddingDim: 8, params, rng: createRng(1) });
  const optimizer = sgd(head.parameters, { momentum: 0.9 });
  const embeddings = tensor(backend, new Float32Array(16).fill(0.25), [2, 8]);
  const loss = tidy(() => head.forward(embeddings, new Int32Array([0, 1])));
  backward(loss);
  optimizer.step(0.1);
  return (await loss.data())[0]!;
}

const output = document.querySelector('output')!;
document.querySelector('button')!.addEventListener('click', () => {
  trainStep().then(
    (loss) => (output.textContent = `loss ${loss.toFixed(4)}`),
    (error: unknown) => (output.textContent = String(error)),
  );
});
