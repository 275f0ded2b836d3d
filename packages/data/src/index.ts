export * from './image.js';
export * from './synthetic.js';
export * from './pickle.js';
export * from './recordio.js';
export * from './decoder.js';
export * from './align.js';
export * from './augment.js';
