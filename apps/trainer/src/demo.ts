/** The main job's config, shipped with the trainer. */
import { fileURLToPath } from 'node:url';

export const demoConfigPath = fileURLToPath(new URL('../configs/demo.yaml', import.meta.url));
