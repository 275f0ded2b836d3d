/** What the speed view measures on this device: a hardware GPU, a software adapter, or a CPU fallback (wasm or the TS reference). */
import { fallbackLead, type BackendChoice } from './backend.js';

export function speedNote(b: BackendChoice): { kind: 'hardware' | 'software' | 'wasm' | 'cpu'; text: string } {
  if (b.kind === 'wasm') {
    const why = b.fallbackReason ? `${fallbackLead(b)} (${b.fallbackReason})` : 'The WebAssembly backend was chosen with ?backend=wasm';
    return {
      kind: 'wasm',
      text: `${why}, so the speed test runs on @fr/backend-wasm: SIMD kernels on the CPU` +
        `${typeof crossOriginIsolated !== 'undefined' && crossOriginIsolated ? ', one worker thread per core' : ' (one thread: the page is not cross-origin isolated)'}. ` +
        'A GPU with WebGPU is still far faster.',
    };
  }
  if (b.kind === 'cpu') {
    const why = b.fallbackReason ? `${fallbackLead(b)} (${b.fallbackReason})` : 'The CPU backend was chosen with ?backend=cpu';
    return {
      kind: 'cpu',
      text: `${why}, so the speed test runs on @fr/backend-cpu: the TypeScript reference kernels on one thread of the CPU, ` +
        'far slower than any GPU. In a browser with WebGPU the same test runs on the GPU.',
    };
  }
  if (b.hardware) return { kind: 'hardware', text: `Adapter: ${b.description}, a hardware GPU (from the adapter's info). The figures below are this GPU's.` };
  return {
    kind: 'software',
    text: `Adapter: ${b.description}, a software adapter (from the adapter's info): WebGPU emulated on the CPU, ` +
      'typically a hundred times slower than a GPU or more. Compare losses and backbones with it, not devices.',
  };
}
