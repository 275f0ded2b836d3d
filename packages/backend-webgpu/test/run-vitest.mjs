// Runs vitest with the environment Dawn needs on a machine without a GPU (SwiftShader through
// Vulkan), unless the caller already chose an ICD.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const env = { ...process.env };
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!env.VK_ICD_FILENAMES && existsSync(swiftshader)) env.VK_ICD_FILENAMES = swiftshader;
env.XDG_RUNTIME_DIR ??= '/tmp';
const vitest = createRequire(import.meta.url).resolve('vitest/vitest.mjs');
const r = spawnSync(process.execPath, [vitest, 'run', ...process.argv.slice(2)], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
