export * from './image.js';
export * from './synthetic.js';
export * from './pickle.js';
