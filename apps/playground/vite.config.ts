import { defaultClientConditions, defineConfig } from 'vite';

// Cross-origin isolation gives the page SharedArrayBuffer, so the wasm backend runs threads.
const isolation = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' };

export default defineConfig({
  server: { headers: isolation },
  preview: { headers: isolation },
  // Relative asset paths: the build output works from any folder or static host, offline.
  base: './',
  // Workspace packages load from their TypeScript sources; only their browser-safe entries are imported.
  resolve: { conditions: ['@fr/source', ...defaultClientConditions] },
  build: {
    target: 'es2022',
    // One page, one bundle: the app is a few hundred kB and has no lazy parts.
    chunkSizeWarningLimit: 1024,
    rollupOptions: {
      // zod's sources carry comments Rollup cannot place; the notice is about comments only.
      onwarn(warning, warn) {
        if (warning.code !== 'INVALID_ANNOTATION') warn(warning);
      },
      // Node-only modules must never reach the page; fail the build if an import drags one in.
      external: (id) => {
        if (/^(node:|webgpu$|sharp$|onnxruntime-node$)/.test(id) || ['fs', 'path', 'worker_threads', 'child_process'].includes(id)) {
          throw new Error(`@fr/playground: the browser bundle imports the Node-only module "${id}"`);
        }
        return false;
      },
    },
  },
});
