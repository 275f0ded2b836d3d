import { expect, test } from 'vitest';
import { defineBackbone, defineLoss, markPlugin, pluginKind, z } from './index.js';

const params = z.object({});

test('defineLoss and defineBackbone mark what they make; look-alikes are not marked', () => {
  const loss = defineLoss({ name: 'toy', description: 'toy', params, createHead: () => { throw new Error('unused'); } });
  const backbone = defineBackbone({
    name: 'toy-net', description: 'toy', params, inputShape: () => [3, 8, 8], embeddingDim: () => 4, build: () => { throw new Error('unused'); },
  });
  expect(pluginKind(loss)).toBe('loss');
  expect(pluginKind(backbone)).toBe('backbone');
  // Same fields, not made by define*: not a plugin.
  expect(pluginKind({ ...loss })).toBeNull();
  expect(pluginKind({ name: 'x', description: '', params, createHead: () => null })).toBeNull();
  for (const v of [null, undefined, 3, 'loss', () => 1]) expect(pluginKind(v)).toBeNull();
  // The mark is invisible to keys and JSON.
  expect(Object.keys(loss)).toEqual(['name', 'description', 'params', 'createHead']);
  expect(JSON.stringify({ name: loss.name })).toBe('{"name":"toy"}');
});

test('a frozen plugin object is wrapped, every field reading through', () => {
  const frozen = Object.freeze({ name: 'frozen', description: 'd', params, createHead: () => { throw new Error('unused'); } });
  const loss = defineLoss(frozen);
  expect(pluginKind(loss)).toBe('loss');
  expect(loss.name).toBe('frozen');
  expect(loss.params).toBe(params);
  expect(markPlugin(loss, 'loss')).toBe(loss);
});
