/**
 * @fr/data/node: the parts that need Node (files, sharp, worker threads). The main entry stays free
 * of node-only imports so that it bundles for browsers.
 */
export * from './files.js';
export * from './sharp-decoder.js';
export * from './folder.js';
export * from './loader.js';
export * from './sources.js';
