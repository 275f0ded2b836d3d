import { describe, expect, it } from 'vitest';
import { formatTick, linearTicks, logTicks } from '../src/axis.js';

const labels = (t: { label: string }[]) => t.map((x) => x.label);

describe('loss axis ticks', () => {
  it('log scale: decades when three or more fit, else half-decades, never a rounded 0.00', () => {
    expect(labels(logTicks(0.003, 2.1))).toEqual(['0.01', '0.1', '1']);
    expect(labels(logTicks(0.4, 20))).toEqual(['1', '3', '10']);
    expect(labels(logTicks(0.0004, 0.03))).toEqual(['0.001', '0.003', '0.01', '0.03']);
    expect(labels(logTicks(1e-5, 100))).toEqual(['1e-5', '0.001', '0.1', '10']);
    expect(labels(logTicks(1.5, 2.9))).toEqual(['1.5', '2.9']);
    expect(labels(logTicks(1.2, 1.9))).toEqual(['1.2', '1.9']);
    expect(() => logTicks(0, 1)).toThrow(/0 < lo <= hi, got 0, 1/);
  });

  it('linear scale: 1, 2 or 5 times a power of ten', () => {
    expect(labels(linearTicks(2.179, 17, 3))).toEqual(['5', '10', '15']);
    expect(labels(linearTicks(0.1, 0.45))).toEqual(['0.1', '0.2', '0.3', '0.4']);
    expect(labels(linearTicks(3, 3))).toEqual(['3']);
    // A step of 10 would leave one tick between 2.2 and 19: the step shrinks to 5.
    expect(labels(linearTicks(2.179, 19, 3))).toEqual(['5', '10', '15']);
    expect(() => linearTicks(2, 1)).toThrow(/finite lo <= hi, got 2, 1/);
  });

  it('formats without float noise', () => {
    expect(formatTick(0.1 + 0.2)).toBe('0.3');
    expect(formatTick(2e-4)).toBe('2e-4');
    expect(formatTick(250000)).toBe('2.5e5');
    expect(formatTick(0)).toBe('0');
  });
});
