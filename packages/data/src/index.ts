export * from './image.js';
export * from './synthetic.js';
