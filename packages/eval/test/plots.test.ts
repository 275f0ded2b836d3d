import { describe, expect, it } from 'vitest';
import { histogram, rocCurve, rocSvg, scoreHistogramSvg } from '../src/index.js';

describe('SVG plots', () => {
  const scores = [0.9, 0.8, 0.7, 0.3, 0.6, 0.2, 0.1, -0.2];
  const labels = [1, 1, 1, 1, 0, 0, 0, 0];
  it('draws one polyline per ROC curve with its legend, escaped', () => {
    const svg = rocSvg([{ label: 'a<b', roc: rocCurve(scores, labels) }, { label: 'raw', roc: rocCurve(scores.map((s) => -s), labels) }], { logFpr: false });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.match(/<polyline/g)).toHaveLength(2);
    expect(svg).toContain('a&lt;b');
    expect(svg.endsWith('</svg>')).toBe(true);
    // The (0,0) point of a linear ROC sits at the bottom-left corner of the frame.
    expect(svg).toMatch(/points="56,356 /);
  });
  it('bins values and draws both histograms', () => {
    expect(histogram([-1, -0.5, 0, 0.99, 1, 2], 4, -1, 1)).toEqual([1, 1, 1, 3]);
    const svg = scoreHistogramSvg([0.9, 0.8], [0.1, -0.3, -0.31], { bins: 10 });
    expect(svg).toContain('same (2)');
    expect(svg).toContain('different (3)');
    // Three non-empty bins (0.8 and 0.9 share one) plus two legend swatches.
    expect(svg.match(/<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="[\d.]+" fill="#/g)?.length).toBe(5);
  });
});
