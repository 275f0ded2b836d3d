/**
 * The plugins built into `fr`. Others join them at run time from a config's `plugins:` list or
 * `--plugin` (see plugin-loader.ts); the config schema, the error messages and `fr compare` follow
 * from the combined lists.
 */
import { readFileSync } from 'node:fs';
import { adaface } from '@fr/adaface';
import { arcface } from '@fr/arcface';
import { cosface } from '@fr/cosface';
import { curricularface } from '@fr/curricularface';
import { elasticface } from '@fr/elasticface';
import { iresnet } from '@fr/iresnet';
import { magface } from '@fr/magface';
import { mobilefacenet } from '@fr/mobilefacenet';
import { multiface } from '@fr/multiface';
import { onnxBackbone } from '@fr/onnx';
import { smallnet } from '@fr/smallnet';
import { l2softmax, normface, softmax } from '@fr/softmax';
import { sphereface } from '@fr/sphereface';
import { sphereface2 } from '@fr/sphereface2';
import { subcenterArcface } from '@fr/subcenter-arcface';
import { x2softmax } from '@fr/x2softmax';
import type { Backbone, Loss } from '@fr/core';
import type { PluginSource } from './plugin-loader.js';

export const installedLosses: readonly Loss<any>[] = [
  softmax, l2softmax, normface, sphereface, cosface, arcface, sphereface2, x2softmax, multiface,
  curricularface, elasticface, adaface, magface, subcenterArcface,
];

export const installedBackbones: readonly Backbone<any>[] = [smallnet, mobilefacenet, iresnet, onnxBackbone({ readModel: (path) => readFileSync(path) })];

export interface Plugins {
  losses: readonly Loss<any>[];
  backbones: readonly Backbone<any>[];
  /** The modules loaded at run time that added to the built-in lists; checkpoints record them. */
  sources?: readonly PluginSource[];
}

const builtinModules: ReadonlyMap<object, string> = new Map<object, string>([
  [softmax, '@fr/softmax'], [l2softmax, '@fr/softmax'], [normface, '@fr/softmax'], [sphereface, '@fr/sphereface'],
  [cosface, '@fr/cosface'], [arcface, '@fr/arcface'], [sphereface2, '@fr/sphereface2'], [x2softmax, '@fr/x2softmax'],
  [multiface, '@fr/multiface'], [curricularface, '@fr/curricularface'], [elasticface, '@fr/elasticface'],
  [adaface, '@fr/adaface'], [magface, '@fr/magface'], [subcenterArcface, '@fr/subcenter-arcface'],
  [smallnet, '@fr/smallnet'], [mobilefacenet, '@fr/mobilefacenet'], [iresnet, '@fr/iresnet'],
]);

/** Which package a built-in plugin comes from, for messages ("a plugin given by the caller" otherwise). */
export function builtinOrigin(plugin: object): string {
  const name = builtinModules.get(plugin);
  return name ? `${name} (built in)` : 'a plugin given by the caller';
}

export const defaultPlugins: Plugins = { losses: installedLosses, backbones: installedBackbones };
