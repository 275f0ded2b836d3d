/** The input of View 1 made visible: a few of the synthetic face images of each identity. */
import { classColor, drawImage } from './plot.js';
import { renderFaces } from './session.js';

/** How many images of each identity the strip shows. */
export const FACES_PER_CLASS = 3;

/** One column per identity (its class colour on top), `FACES_PER_CLASS` images each, as training sees them before the random flip. */
export function renderFaceStrip(strip: HTMLElement, o: { identities: number; imagesPerIdentity: number; size: number; seed: number }): void {
  const { images, labels } = renderFaces(o.identities, o.imagesPerIdentity, o.size, o.seed);
  const columns: HTMLElement[] = [];
  for (let c = 0; c < o.identities; c++) {
    const column = document.createElement('div');
    column.className = 'face-class';
    column.dataset.class = String(c);
    column.title = `class ${c}: ${Math.min(FACES_PER_CLASS, o.imagesPerIdentity)} of its ${o.imagesPerIdentity} images (${o.size}x${o.size})`;
    column.style.borderTopColor = classColor(c);
    let shown = 0;
    for (let i = 0; i < images.length && shown < FACES_PER_CLASS; i++) {
      if (labels[i] !== c) continue;
      const canvas = document.createElement('canvas');
      canvas.className = 'face';
      drawImage(canvas, images[i]);
      column.append(canvas);
      shown++;
    }
    columns.push(column);
  }
  strip.replaceChildren(...columns);
}
