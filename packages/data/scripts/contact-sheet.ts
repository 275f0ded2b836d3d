/**
 * Writes docs/contact-sheet.png: 8 identities (rows) x 8 images (columns) of the synthetic set.
 * Run: node --conditions=@fr/source --import tsx scripts/contact-sheet.ts [size] [scale]
 */
import sharp from 'sharp';
import { SyntheticFaces } from '../src/index.js';

const size = Number(process.argv[2] ?? 64);
const scale = Number(process.argv[3] ?? (size < 64 ? 3 : 2));
const set = new SyntheticFaces({ seed: 0, size });
const rows = 8, cols = 8, gap = 2;
const cell = size * scale + gap;
const W = cols * cell + gap, H = rows * cell + gap;
const sheet = Buffer.alloc(W * H * 3, 255);
for (let r = 0; r < rows; r++) {
  for (let c = 0; c < cols; c++) {
    const { image } = set.sample(r, c);
    for (let y = 0; y < size * scale; y++) {
      for (let x = 0; x < size * scale; x++) {
        const s = (Math.floor(y / scale) * size + Math.floor(x / scale)) * 3;
        const d = ((gap + r * cell + y) * W + gap + c * cell + x) * 3;
        sheet[d] = image.data[s]; sheet[d + 1] = image.data[s + 1]; sheet[d + 2] = image.data[s + 2];
      }
    }
  }
}
const out = new URL(`../docs/contact-sheet-${size}.png`, import.meta.url).pathname;
await sharp(sheet, { raw: { width: W, height: H, channels: 3 } }).png().toFile(out);
console.log(`wrote ${out}`);
