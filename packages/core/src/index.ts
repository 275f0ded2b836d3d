export * from './errors.js';
export * from './backend.js';
export * from './kernels.js';
export * from './tensor.js';
export * from './tape.js';
export * from './ops.js';
export * from './margin.js';
export * from './loss.js';
export * from './backbone.js';
export * from './rng.js';
export * from './init.js';
export * from './optim.js';
export * from './schedule.js';
export * from './safetensors.js';
export * from './checkpoint.js';
export * from './config.js';
export * from './layers.js';
/** The zod instance plugins build their schemas with (one copy, so schemas compose). */
export { z } from 'zod';
