export * from './verification.js';
export * from './roc.js';
export * from './scores.js';
export * from './identification.js';
export * from './flip.js';
export * from './plots.js';
