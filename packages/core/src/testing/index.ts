/** @fr/core/testing: the conformance kits that backends and plugins run against themselves. */
export * from './kernel-conformance.js';
export * from './gradcheck.js';
export * from './central-differences.js';
export * from './backbone-checkpoint.js';
export * from './loss-conformance.js';
export * from './activation-storage.js';
export * from './tolerance.js';
export * from './combined-margin.js';
export * from './layer-golden.js';
export * from './margin-probe.js';
export * from './trig-reference.js';
