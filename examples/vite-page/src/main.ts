import { pickBackend } from './backend.js';
import { train } from './train.js';

const backend = await pickBackend(new URLSearchParams(location.search).get('backend') === 'webgpu');
document.querySelector('#backend')!.textContent = `${backend.name}: ${backend.capabilities.description}`;
const losses = await train(backend, 20);
document.querySelector('#log')!.textContent = losses.map((l, i) => `step ${i + 1}: loss ${l.toFixed(3)}`).join('\n');
backend.dispose();

// For the test of this example (test/page.test.ts).
Object.assign(window, { frExample: { backend: backend.name, description: backend.capabilities.description, isolated: crossOriginIsolated, losses } });
