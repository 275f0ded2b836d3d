import { defaultClientConditions, defineConfig } from 'vite';

// Cross-origin isolation: with these two headers the page gets SharedArrayBuffer, so the wasm
// backend runs one worker thread per core. A static host must send the same two headers.
const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  server: { headers: crossOriginIsolation },
  preview: { headers: crossOriginIsolation },
  // Inside the @fr repository only: load the workspace packages from their TypeScript sources.
  // A project that installs @fr from npm leaves `resolve` out.
  resolve: { conditions: ['@fr/source', ...defaultClientConditions] },
  build: { target: 'es2022' },
});
