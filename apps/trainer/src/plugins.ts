/**
 * The plugins this program was given. Adding a loss or a backbone to the CLI is one import and one
 * entry here; the config schema, the error messages and `fr compare` follow from these lists.
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

export const installedLosses: readonly Loss<any>[] = [
  softmax, l2softmax, normface, sphereface, cosface, arcface, sphereface2, x2softmax, multiface,
  curricularface, elasticface, adaface, magface, subcenterArcface,
];

export const installedBackbones: readonly Backbone<any>[] = [smallnet, mobilefacenet, iresnet, onnxBackbone({ readModel: (path) => readFileSync(path) })];

export interface Plugins {
  losses: readonly Loss<any>[];
  backbones: readonly Backbone<any>[];
}

export const defaultPlugins: Plugins = { losses: installedLosses, backbones: installedBackbones };
