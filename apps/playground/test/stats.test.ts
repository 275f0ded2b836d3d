import { describe, expect, it } from 'vitest';
import { controlsFor, defaultParams, LOSSES, lossEntry, startParams } from '../src/losses.js';
import { angularSpread } from '../src/stats.js';

const deg = (a: number) => (a * Math.PI) / 180;
const unit = (a: number, r = 1) => [r * Math.cos(deg(a)), r * Math.sin(deg(a))];

describe('angularSpread', () => {
  it('averages the angle of each sample to its normalised class weight, per class', () => {
    // Class 0 centred at 0 deg (weight norm 3), samples at +10 and -20 deg; class 1 at 90 deg, samples at 95 and 90.
    const weights = Float32Array.from([...unit(0, 3), ...unit(90, 0.5)]);
    const embeddings = Float32Array.from([...unit(10, 2), ...unit(-20, 7), ...unit(95), ...unit(90, 4)]);
    const s = angularSpread(embeddings, Int32Array.from([0, 0, 1, 1]), weights, 2, 2);
    expect(s.perClass[0]).toBeCloseTo(15, 5);
    expect(s.perClass[1]).toBeCloseTo(2.5, 5);
    expect(s.mean).toBeCloseTo(8.75, 5);
    expect(s.accuracy).toBe(1);
    expect(s.minCentreAngle).toBeCloseTo(90, 5);
  });

  it('counts a sample nearer another centre as wrong and skips absent classes in the mean', () => {
    const weights = Float32Array.from([...unit(0), ...unit(60), ...unit(180)]);
    const embeddings = Float32Array.from([...unit(50), ...unit(5)]);
    const s = angularSpread(embeddings, Int32Array.from([0, 0]), weights, 3, 2);
    expect(s.perClass[0]).toBeCloseTo(27.5, 5);
    expect(Number.isNaN(s.perClass[1])).toBe(true);
    expect(s.mean).toBeCloseTo(27.5, 5);
    expect(s.accuracy).toBe(0.5);
    expect(s.minCentreAngle).toBeCloseTo(60, 5);
  });
});

describe('controls read from the loss schemas', () => {
  it('takes defaults, bounds and enum options from zod', () => {
    const arc = controlsFor(lossEntry('arcface'));
    expect(arc.map((c) => c.name)).toEqual(['s', 'm', 'gradient']);
    expect(arc[0]).toMatchObject({ kind: 'number', default: 64, min: 1, max: 64 });
    expect(arc[1]).toMatchObject({ kind: 'number', default: 0.5, min: 0, max: 1 });
    expect(arc[2]).toMatchObject({ kind: 'enum', default: 'detached', options: ['detached', 'exact'] });
    expect(arc[0].description).toMatch(/scale/);
    // x2softmax's a is negative in its schema: the slider never reaches 0.
    const a = controlsFor(lossEntry('x2softmax')).find((c) => c.name === 'a')!;
    expect(a).toMatchObject({ kind: 'number', default: -0.9 });
    expect(a.kind === 'number' && a.max).toBeLessThan(0);
    expect(controlsFor(lossEntry('sphereface2')).map((c) => c.name)).toEqual(['lambda', 'r', 'm', 't', 'lw', 'margin']);
    expect(controlsFor(lossEntry('softmax'))).toEqual([expect.objectContaining({ kind: 'boolean', name: 'bias', default: false })]);
  });

  it("picks SphereFace's opensphere variant out of its preprocessed union", () => {
    const sf = controlsFor(lossEntry('sphereface'));
    expect(sf.map((c) => [c.name, c.default])).toEqual([['s', 30], ['m', 1.7]]);
  });

  it('every loss parses its own default and 2-d start parameters', () => {
    for (const entry of LOSSES) {
      for (const params of [defaultParams(entry), startParams(entry)]) {
        const r = entry.loss.params.safeParse({ ...params, ...entry.fixed });
        expect(r.success, entry.loss.name).toBe(true);
      }
    }
    expect(startParams(lossEntry('arcface'))).toEqual({ s: 16, m: 0.5, gradient: 'detached' });
  });
});
