export { default } from '@fr/tooling/vitest';
