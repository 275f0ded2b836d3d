/**
 * A synthetic face set in the spirit of DigiFace-1M, embedded so that demos and tests need no
 * download. An identity is a set of traits drawn from a seeded generator (face shape, proportions,
 * eyes, brows, nose, mouth, hair, skin, accessories); each image of it adds nuisance (in-plane
 * rotation, a yaw-like shift of the inner features, scale, translation, expression, lighting,
 * background, blur, noise, occlusion). Every image is a pure function of (seed, identity, index).
 */
import { createRng, DataError, pcgHash, type Rng } from '@fr/core';
import { createImage, type RgbImage } from './image.js';
import { Canvas, capsule, capsuleBox, convexPolygon, ellipse, ellipseBox, halfPlane, intersect, pointsBox, ring, type Shape, subtract, union } from './raster.js';

type Rgb = readonly [number, number, number];

const SKIN: Rgb[] = [[0.98, 0.85, 0.74], [0.94, 0.78, 0.64], [0.87, 0.67, 0.5], [0.76, 0.55, 0.38], [0.6, 0.41, 0.27], [0.45, 0.3, 0.2], [0.33, 0.22, 0.15]];
const HAIR: Rgb[] = [[0.06, 0.05, 0.05], [0.2, 0.12, 0.07], [0.38, 0.24, 0.12], [0.62, 0.45, 0.24], [0.85, 0.72, 0.45], [0.55, 0.22, 0.1], [0.6, 0.6, 0.6], [0.9, 0.9, 0.88], [0.3, 0.2, 0.5]];
const IRIS: Rgb[] = [[0.25, 0.15, 0.08], [0.4, 0.26, 0.12], [0.2, 0.4, 0.65], [0.3, 0.5, 0.35], [0.45, 0.5, 0.55], [0.08, 0.06, 0.05]];
const HAIR_STYLES = ['bald', 'short', 'bangs', 'sidePart', 'long', 'curly', 'bun'] as const;

/** Per-identity traits; exported so tests and docs can show what varies. */
export interface FaceTraits {
  skin: Rgb;
  headRx: number; headRy: number; headCy: number;
  jawWidth: number; jawDrop: number;
  earSize: number;
  eyeY: number; eyeGap: number; eyeRx: number; eyeAspect: number; eyeTilt: number; iris: Rgb;
  browGap: number; browLen: number; browThick: number; browAngle: number; browColor: Rgb;
  noseLen: number; noseWidth: number; noseShade: number; noseRound: boolean;
  mouthY: number; mouthWidth: number; lipThick: number; lipColor: Rgb;
  hairStyle: (typeof HAIR_STYLES)[number]; hairColor: Rgb; hairline: number; hairVolume: number; partSide: number;
  glasses: null | { round: boolean; color: Rgb; size: number; sun: boolean };
  beard: boolean; moustache: boolean; mole: null | [number, number];
  cheekBlush: number;
}

export interface SyntheticFacesOptions {
  /** Master seed: a different seed is a different population. Default 0. */
  seed?: number;
  /** Image side in pixels. Default 32. */
  size?: number;
  /** Training identities (labels 0..trainIdentities-1). Default 1000. */
  trainIdentities?: number;
  /** Images per training identity. Default 20. */
  imagesPerIdentity?: number;
  /** Held-out identities for verification, disjoint from the training ones. Default 1200. */
  testIdentities?: number;
  /** Images per test identity that pairs may name. Default 10. */
  testImagesPerIdentity?: number;
  /** Scales every nuisance (0 = canonical pose and lighting, 1 = default). */
  nuisance?: number;
}

export interface FaceSample {
  image: RgbImage;
  /** Five landmarks (x, y) in pixels, pixel centres at integers: left eye, right eye, nose tip, left and right mouth corner. */
  landmarks: Float32Array;
}

/** One verification pair: two (identity, image) references and whether they are the same identity. */
export interface FacePair {
  a: { identity: number; index: number };
  b: { identity: number; index: number };
  same: boolean;
  fold: number;
}

const clampInt = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

function mixSeed(...parts: number[]): number {
  let h = 0x2545f491;
  for (const p of parts) h = pcgHash((h ^ (p >>> 0)) >>> 0);
  return h;
}

const between = (rng: Rng, lo: number, hi: number) => lo + (hi - lo) * rng.uniform();
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)];
const jitter = (rng: Rng, c: Rgb, s: number): Rgb => [
  Math.min(1, Math.max(0, c[0] + rng.normal(0, s))),
  Math.min(1, Math.max(0, c[1] + rng.normal(0, s))),
  Math.min(1, Math.max(0, c[2] + rng.normal(0, s))),
];
const shade = (c: Rgb, f: number): Rgb => [c[0] * f, c[1] * f, c[2] * f];

export function drawTraits(rng: Rng): FaceTraits {
  const hairColor = jitter(rng, pick(rng, HAIR), 0.04);
  const skin = jitter(rng, pick(rng, SKIN), 0.03);
  const glassesP = rng.uniform();
  return {
    skin,
    headRx: between(rng, 0.25, 0.33), headRy: between(rng, 0.31, 0.39), headCy: between(rng, 0.47, 0.53),
    jawWidth: between(rng, 0.6, 0.95), jawDrop: between(rng, 0.0, 0.07),
    earSize: between(rng, 0.035, 0.06),
    eyeY: between(rng, 0.42, 0.49), eyeGap: between(rng, 0.095, 0.145), eyeRx: between(rng, 0.04, 0.062),
    eyeAspect: between(rng, 0.4, 0.72), eyeTilt: rng.normal(0, 0.12), iris: jitter(rng, pick(rng, IRIS), 0.03),
    browGap: between(rng, 0.045, 0.08), browLen: between(rng, 0.06, 0.11), browThick: between(rng, 0.008, 0.022),
    browAngle: rng.normal(0, 0.18), browColor: shade(hairColor, between(rng, 0.6, 0.95)),
    noseLen: between(rng, 0.08, 0.15), noseWidth: between(rng, 0.035, 0.075), noseShade: between(rng, 0.72, 0.9), noseRound: rng.uniform() < 0.5,
    mouthY: between(rng, 0.66, 0.74), mouthWidth: between(rng, 0.05, 0.1), lipThick: between(rng, 0.01, 0.025),
    lipColor: jitter(rng, [skin[0] * 0.8, skin[1] * 0.45, skin[2] * 0.45], 0.04),
    hairStyle: pick(rng, HAIR_STYLES), hairColor, hairline: between(rng, 0.24, 0.34), hairVolume: between(rng, 1.0, 1.18),
    partSide: rng.uniform() < 0.5 ? -1 : 1,
    glasses: glassesP < 0.25 ? { round: rng.uniform() < 0.5, color: jitter(rng, pick(rng, [[0.1, 0.1, 0.1], [0.5, 0.3, 0.1], [0.7, 0.7, 0.75], [0.6, 0.1, 0.1]] as Rgb[]), 0.03), size: between(rng, 1.2, 1.5), sun: glassesP < 0.04 } : null,
    beard: rng.uniform() < 0.15, moustache: rng.uniform() < 0.2,
    mole: rng.uniform() < 0.2 ? [between(rng, 0.3, 0.7), between(rng, 0.5, 0.75)] : null,
    cheekBlush: between(rng, 0, 0.35),
  };
}

interface Nuisance {
  angle: number; scale: number; shiftX: number; shiftY: number; yaw: number;
  smile: number; mouthOpen: number; eyeOpen: number; browRaise: number;
  light: number; lightDir: number; brightness: number; tint: Rgb;
  bgA: Rgb; bgB: Rgb; bgDir: number;
  blur: boolean; noise: number;
  occluder: null | { kind: 'box' | 'disc'; x: number; y: number; w: number; h: number; rot: number; color: Rgb };
}

function drawNuisance(rng: Rng, k: number): Nuisance {
  return {
    angle: Math.max(-0.45, Math.min(0.45, rng.normal(0, 0.16 * k))),
    scale: Math.exp(rng.normal(0, 0.08 * k)),
    shiftX: rng.normal(0, 0.04 * k), shiftY: rng.normal(0, 0.04 * k),
    yaw: Math.max(-0.07, Math.min(0.07, rng.normal(0, 0.035 * k))),
    smile: k * between(rng, -0.4, 1), mouthOpen: rng.uniform() < 0.25 * k ? between(rng, 0.3, 1) : 0,
    eyeOpen: 1 - k * (rng.uniform() < 0.1 ? between(rng, 0.6, 0.9) : between(rng, 0, 0.3)),
    browRaise: k * rng.normal(0, 0.012),
    light: k * between(rng, 0, 0.9), lightDir: between(rng, 0, 2 * Math.PI), brightness: Math.exp(rng.normal(0, 0.18 * k)),
    tint: [1 + rng.normal(0, 0.06 * k), 1 + rng.normal(0, 0.04 * k), 1 + rng.normal(0, 0.06 * k)],
    bgA: [rng.uniform(), rng.uniform(), rng.uniform()], bgB: [rng.uniform(), rng.uniform(), rng.uniform()], bgDir: between(rng, 0, 2 * Math.PI),
    blur: rng.uniform() < 0.35 * k, noise: k * between(rng, 0, 0.06),
    occluder: rng.uniform() < 0.3 * k ? {
      kind: rng.uniform() < 0.5 ? 'box' : 'disc',
      x: between(rng, 0.2, 0.8), y: between(rng, 0.3, 0.85), w: between(rng, 0.08, 0.22), h: between(rng, 0.06, 0.2),
      rot: between(rng, 0, Math.PI), color: [rng.uniform(), rng.uniform(), rng.uniform()],
    } : null,
  };
}

/** Face-space landmark positions before the image transform (and with the yaw shift applied). */
function faceLandmarks(t: FaceTraits, n: Nuisance): number[] {
  const cx = 0.5 + n.yaw;
  const mw = t.mouthWidth * (1 + 0.15 * Math.max(0, n.smile));
  const my = t.mouthY - 0.01 * n.smile;
  return [cx - t.eyeGap, t.eyeY, cx + t.eyeGap, t.eyeY, cx + 0.3 * n.yaw, t.eyeY + t.noseLen, cx - mw, my, cx + mw, my];
}

function faceShapes(t: FaceTraits, n: Nuisance): Shape[] {
  const shapes: Shape[] = [];
  const add = (sdf: Shape['sdf'], box: Shape['box'], color: Rgb, opacity?: number) => {
    if (opacity === undefined || opacity > 0.02) shapes.push({ sdf, box, color, opacity });
  };
  const hx = 0.5 + n.yaw * 0.35; // the head outline turns less than the inner features
  const cx = 0.5 + n.yaw;
  const { headRx: rx, headRy: ry, headCy: cy } = t;
  const hair = t.hairColor;

  // Hair behind the head.
  if (t.hairStyle === 'long') add(union(ellipse(hx, cy + 0.06, rx * 1.2, ry * 1.15), convexPolygon([[hx - rx * 1.2, cy], [hx + rx * 1.2, cy], [hx + rx * 1.3, cy + ry * 1.4], [hx - rx * 1.3, cy + ry * 1.4]])), [hx - rx * 1.4, cy - ry * 1.2, hx + rx * 1.4, cy + ry * 1.5], shade(hair, 0.85));
  if (t.hairStyle === 'curly') add(ellipse(hx, cy - 0.05, rx * 1.35 * t.hairVolume, ry * 1.1 * t.hairVolume), ellipseBox(hx, cy - 0.05, rx * 1.5, ry * 1.3), hair);
  if (t.hairStyle === 'bun') add(ellipse(hx, cy - ry * 1.05, rx * 0.4, rx * 0.35), ellipseBox(hx, cy - ry * 1.05, rx * 0.4, rx * 0.4), hair);
  // Neck and shoulders.
  const neck = shade(t.skin, 0.85);
  add(convexPolygon([[hx - rx * 0.45, cy + ry * 0.6], [hx + rx * 0.45, cy + ry * 0.6], [hx + rx * 0.55, 1.2], [hx - rx * 0.55, 1.2]]), [hx - rx, cy, hx + rx, 1.2], neck);
  add(ellipse(hx, 1.12, rx * 2.2, 0.16), ellipseBox(hx, 1.12, rx * 2.2, 0.16), shade(t.iris, 1.2));
  // Ears.
  for (const s of [-1, 1]) {
    const ex = hx + s * rx * 0.97 - n.yaw * 0.3, ey = t.eyeY + 0.03;
    add(ellipse(ex, ey, t.earSize * 0.7, t.earSize * 1.3), ellipseBox(ex, ey, t.earSize, t.earSize * 1.3), shade(t.skin, 0.93));
  }
  // Head: a cranium ellipse united with a narrower jaw ellipse.
  const head = union(ellipse(hx, cy, rx, ry), ellipse(hx, cy + ry * 0.35 + t.jawDrop, rx * t.jawWidth, ry * 0.7));
  add(head, [hx - rx, cy - ry, hx + rx, cy + ry * 1.05 + t.jawDrop + 0.05], t.skin);
  // Directional shading of the skin: a darker half-plane-limited wash on one side follows the yaw.
  add(intersect(head, halfPlane(-Math.sign(n.yaw || 1), 0, hx + Math.sign(n.yaw || 1) * rx * 0.6, 0)), [hx - rx, cy - ry, hx + rx, cy + ry * 1.1], shade(t.skin, 0.8), Math.min(0.6, Math.abs(n.yaw) * 8));
  // Cheeks.
  if (t.cheekBlush > 0.05) for (const s of [-1, 1]) add(ellipse(cx + s * t.eyeGap * 1.2, t.mouthY - 0.07, 0.045, 0.03), ellipseBox(cx + s * t.eyeGap * 1.2, t.mouthY - 0.07, 0.05, 0.05), [0.9, 0.45, 0.45], t.cheekBlush * 0.5);
  // Beard under the mouth, clipped to the jaw.
  if (t.beard) add(intersect(head, halfPlane(0, -1, 0, t.mouthY - 0.04)), [hx - rx, t.mouthY - 0.05, hx + rx, cy + ry * 1.1 + t.jawDrop], shade(hair, 0.9), 0.9);
  // Hair on top: the top of an enlarged head ellipse above the hairline.
  const vol = t.hairVolume;
  const top = ellipse(hx, cy - 0.01, rx * 1.06 * vol, ry * 1.04 * vol);
  const topBox: Shape['box'] = [hx - rx * 1.3, cy - ry * 1.3, hx + rx * 1.3, cy + ry * 0.6];
  switch (t.hairStyle) {
    case 'bald': add(intersect(head, halfPlane(0, 1, 0, t.hairline - 0.05)), topBox, shade(t.skin, 1.08), 0.5); break;
    case 'short': case 'long': case 'curly': case 'bun':
      add(intersect(top, halfPlane(0, 1, 0, t.hairline)), topBox, hair);
      if (t.hairStyle !== 'short') for (const s of [-1, 1]) add(intersect(ring(ellipse(hx, cy, rx * 1.0, ry * 0.95), 0.025 * vol), halfPlane(0, 1, 0, t.eyeY + (t.hairStyle === 'long' ? 0.15 : 0.02))), [hx - rx * 1.2, cy - ry * 1.2, hx + rx * 1.2, cy + ry], hair);
      break;
    case 'bangs': add(intersect(top, halfPlane(0, 1, 0, t.eyeY - t.browGap - 0.04)), topBox, hair); break;
    case 'sidePart': add(intersect(top, halfPlane(t.partSide * 0.5, 1, hx, t.hairline + 0.02)), topBox, hair); break;
  }
  // Eyes.
  const eyeH = t.eyeRx * t.eyeAspect * Math.max(0.12, n.eyeOpen);
  for (const s of [-1, 1]) {
    const ex = cx + s * t.eyeGap, ey = t.eyeY;
    // The far eye (relative to the yaw) looks narrower.
    const erx = t.eyeRx * (1 - 3 * Math.max(0, s * -n.yaw) * 1.5);
    const tilt = s * t.eyeTilt;
    const eye = ellipse(ex, ey, erx, eyeH, tilt);
    add(eye, ellipseBox(ex, ey, erx, eyeH), [0.95, 0.95, 0.93]);
    const ir = Math.min(eyeH, erx * 0.55);
    add(intersect(ellipse(ex + n.yaw * 0.2, ey, ir, ir), eye), ellipseBox(ex, ey, ir + 0.01, ir + 0.01), t.iris);
    add(intersect(ellipse(ex + n.yaw * 0.2, ey, ir * 0.45, ir * 0.45), eye), ellipseBox(ex, ey, ir, ir), [0.03, 0.03, 0.03]);
    add(ring(eye, 0.004), ellipseBox(ex, ey, erx + 0.01, eyeH + 0.01), shade(t.skin, 0.45), 0.8);
    // Brows.
    const by = ey - t.browGap - n.browRaise;
    const ba = s * t.browAngle;
    const bx0 = ex - (s * t.browLen) / 2, bx1 = ex + (s * t.browLen) / 2;
    const by0 = by + Math.sin(ba) * t.browLen * 0.5, by1 = by - Math.sin(ba) * t.browLen * 0.5;
    add(capsule(bx0, by0, bx1, by1, t.browThick), capsuleBox(bx0, by0, bx1, by1, t.browThick), t.browColor);
  }
  // Nose.
  const nx = cx + 0.3 * n.yaw, ny = t.eyeY + t.noseLen;
  const noseColor = shade(t.skin, t.noseShade);
  if (t.noseRound) {
    add(ellipse(nx, ny - 0.012, t.noseWidth * 0.7, t.noseWidth * 0.55), ellipseBox(nx, ny, t.noseWidth, t.noseWidth), noseColor);
    add(capsule(nx - 0.005, t.eyeY + 0.02, nx, ny - 0.02, 0.006), capsuleBox(nx, t.eyeY, nx, ny, 0.01), noseColor, 0.7);
  } else {
    const tri: [number, number][] = [[nx - 0.008, t.eyeY + 0.015], [nx + t.noseWidth * 0.8, ny], [nx - t.noseWidth * 0.8, ny]];
    add(convexPolygon(tri), pointsBox(tri), noseColor);
  }
  for (const s of [-1, 1]) add(ellipse(nx + s * t.noseWidth * 0.35, ny - 0.002, 0.01, 0.006), ellipseBox(nx + s * t.noseWidth * 0.35, ny, 0.012, 0.012), shade(t.skin, 0.4), 0.8);
  // Moustache.
  const lm = faceLandmarks(t, n);
  const [mlx, mly, mrx, mry] = [lm[6], lm[7], lm[8], lm[9]];
  if (t.moustache) add(capsule(mlx + 0.01, mly - t.lipThick - 0.015, mrx - 0.01, mry - t.lipThick - 0.015, 0.012), capsuleBox(mlx, mly - 0.05, mrx, mry, 0.02), shade(t.hairColor, 0.9));
  // Mouth: a crescent for a smile (difference of two ellipses), a lens for a neutral or sad face.
  const mcx = (mlx + mrx) / 2, mcy = (mly + mry) / 2;
  const mw = (mrx - mlx) / 2;
  const curve = n.smile * 0.6 * mw;
  const lips = ellipse(mcx, mcy + curve * 0.5, mw, t.lipThick + Math.abs(curve) * 0.6);
  const cut = ellipse(mcx, mcy + curve * 0.5 - Math.sign(curve || 1) * (t.lipThick + Math.abs(curve)) * 0.9, mw * 1.15, t.lipThick + Math.abs(curve) * 0.8);
  const mouthBox = ellipseBox(mcx, mcy, mw + 0.02, mw + 0.02);
  add(Math.abs(curve) > 0.004 ? subtract(lips, cut) : lips, mouthBox, t.lipColor);
  if (n.mouthOpen > 0) add(ellipse(mcx, mcy + 0.005, mw * 0.7, t.lipThick * 1.2 * n.mouthOpen), mouthBox, [0.2, 0.05, 0.05]);
  if (t.mole) add(ellipse(t.mole[0] + n.yaw, t.mole[1], 0.008, 0.008), ellipseBox(t.mole[0] + n.yaw, t.mole[1], 0.01, 0.01), [0.25, 0.15, 0.1]);
  // Glasses.
  if (t.glasses) {
    const g = t.glasses;
    const lens = (s: number) => {
      const ex = cx + s * t.eyeGap, r = t.eyeRx * g.size;
      return g.round ? ellipse(ex, t.eyeY, r, r * 0.85) : convexPolygon([[ex - r, t.eyeY - r * 0.7], [ex + r, t.eyeY - r * 0.7], [ex + r * 0.9, t.eyeY + r * 0.7], [ex - r * 0.9, t.eyeY + r * 0.7]]);
    };
    for (const s of [-1, 1]) {
      const ex = cx + s * t.eyeGap, r = t.eyeRx * g.size;
      if (g.sun) add(lens(s), ellipseBox(ex, t.eyeY, r, r), [0.05, 0.05, 0.07], 0.92);
      add(ring(lens(s), 0.006), ellipseBox(ex, t.eyeY, r + 0.01, r + 0.01), g.color);
    }
    const r = t.eyeRx * g.size;
    add(capsule(cx - t.eyeGap + r, t.eyeY - 0.01, cx + t.eyeGap - r, t.eyeY - 0.01, 0.005), capsuleBox(cx - t.eyeGap, t.eyeY - 0.02, cx + t.eyeGap, t.eyeY, 0.01), g.color);
  }
  // Occluder (a hand, a cup, a sticker, a scarf corner).
  const o = n.occluder;
  if (o) {
    const sdf = o.kind === 'disc' ? ellipse(o.x, o.y, o.w, o.h, o.rot) : convexPolygon(rotRect(o.x, o.y, o.w, o.h, o.rot));
    const r = Math.max(o.w, o.h) * 1.5;
    add(sdf, [o.x - r, o.y - r, o.x + r, o.y + r], o.color);
  }
  return shapes;
}

function rotRect(x: number, y: number, w: number, h: number, rot: number): [number, number][] {
  const c = Math.cos(rot), s = Math.sin(rot);
  return ([[-w, -h], [w, -h], [w, h], [-w, h]] as const).map(([u, v]) => [x + c * u - s * v, y + s * u + c * v]);
}

/** Renders one face of the given traits and nuisance at `size` pixels. */
export function renderFace(t: FaceTraits, n: Nuisance, size: number, noiseRng: Rng): FaceSample {
  // 0.88 leaves room for the hair and chin inside the frame at the mean scale.
  const canvas = new Canvas(size, 0.88 * n.scale, n.angle, n.shiftX, n.shiftY);
  const rgb = canvas.rgb;
  // Background: a linear gradient between two random colours.
  const dx = (1.4 * Math.cos(n.bgDir)) / size, dy = (1.4 * Math.sin(n.bgDir)) / size;
  const [a0, a1, a2] = n.bgA;
  const d0 = n.bgB[0] - a0, d1 = n.bgB[1] - a1, d2 = n.bgB[2] - a2;
  for (let y = 0, o = 0; y < size; y++) {
    let w = 0.5 + 0.5 * ((0.5 - size / 2) * dx + (y + 0.5 - size / 2) * dy);
    for (let x = 0; x < size; x++, o += 3, w += 0.5 * dx) {
      rgb[o] = a0 + d0 * w; rgb[o + 1] = a1 + d1 * w; rgb[o + 2] = a2 + d2 * w;
    }
  }
  for (const s of faceShapes(t, n)) canvas.draw(s);
  const src = n.blur ? boxBlur3(rgb, size) : rgb;
  // Illumination (brightness, colour tint, a linear gradient across the image), sensor noise and
  // quantisation in one pass. The noise is triangular with unit variance: (u1 + u2 - 1) sqrt(6),
  // much cheaper than Box-Muller and indistinguishable at this amplitude.
  const lx = (n.light * Math.cos(n.lightDir)) / size, ly = (n.light * Math.sin(n.lightDir)) / size;
  const [t0, t1, t2] = n.tint;
  const image = createImage(size, size);
  const out = image.data;
  const ns = (255 * n.noise * Math.sqrt(6)) / 4294967296;
  // Per-pixel noise from an inline xorshift32 seeded by the image's generator: the shared
  // generator costs a function call per draw, and noise is the bulk of the draws.
  let xs = (noiseRng.int(0x7fffffff) | 1) >>> 0;
  const tri = () => {
    xs ^= xs << 13; xs >>>= 0; xs ^= xs >>> 17; xs ^= xs << 5; xs >>>= 0;
    const u = xs;
    xs ^= xs << 13; xs >>>= 0; xs ^= xs >>> 17; xs ^= xs << 5; xs >>>= 0;
    return u + xs - 4294967296;
  };
  for (let y = 0, o = 0; y < size; y++) {
    let g = 1 + (0.5 - size / 2) * lx + (y + 0.5 - size / 2) * ly;
    for (let x = 0; x < size; x++, o += 3, g += lx) {
      const f = 255 * n.brightness * g;
      if (ns > 0) {
        out[o] = clampInt(src[o] * f * t0 + ns * tri());
        out[o + 1] = clampInt(src[o + 1] * f * t1 + ns * tri());
        out[o + 2] = clampInt(src[o + 2] * f * t2 + ns * tri());
      } else {
        out[o] = clampInt(src[o] * f * t0);
        out[o + 1] = clampInt(src[o + 1] * f * t1);
        out[o + 2] = clampInt(src[o + 2] * f * t2);
      }
    }
  }
  const f = faceLandmarks(t, n);
  const landmarks = new Float32Array(10);
  for (let k = 0; k < 5; k++) {
    const [px, py] = canvas.toImage(f[2 * k], f[2 * k + 1]);
    // OpenCV's convention, as insightface's landmarks: integer coordinates are pixel centres.
    landmarks[2 * k] = px - 0.5;
    landmarks[2 * k + 1] = py - 0.5;
  }
  return { image, landmarks };
}

/** 3x3 box blur, separable (rows then columns), edges averaged over the pixels that exist. */
function boxBlur3(rgb: Float32Array, n: number): Float32Array {
  const tmp = new Float32Array(rgb.length);
  const out = new Float32Array(rgb.length);
  const row = n * 3;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const o = y * row + x * 3;
      const l = x > 0 ? o - 3 : o, r = x < n - 1 ? o + 3 : o;
      const k = 1 / (1 + (x > 0 ? 1 : 0) + (x < n - 1 ? 1 : 0));
      for (let c = 0; c < 3; c++) tmp[o + c] = (rgb[o + c] + (l !== o ? rgb[l + c] : 0) + (r !== o ? rgb[r + c] : 0)) * k;
    }
  }
  for (let y = 0; y < n; y++) {
    const k = 1 / (1 + (y > 0 ? 1 : 0) + (y < n - 1 ? 1 : 0));
    for (let x = 0; x < row; x++) {
      const o = y * row + x;
      out[o] = (tmp[o] + (y > 0 ? tmp[o - row] : 0) + (y < n - 1 ? tmp[o + row] : 0)) * k;
    }
  }
  return out;
}

/**
 * The synthetic data set. Training identities are 0..trainIdentities-1; test identities are
 * numbered after them and never appear in training. Traits are cached per identity.
 */
export class SyntheticFaces {
  readonly seed: number;
  readonly size: number;
  readonly trainIdentities: number;
  readonly imagesPerIdentity: number;
  readonly testIdentities: number;
  readonly testImagesPerIdentity: number;
  readonly nuisance: number;
  private readonly traits = new Map<number, FaceTraits>();

  constructor(o: SyntheticFacesOptions = {}) {
    this.seed = o.seed ?? 0;
    this.size = o.size ?? 32;
    this.trainIdentities = o.trainIdentities ?? 1000;
    this.imagesPerIdentity = o.imagesPerIdentity ?? 20;
    this.testIdentities = o.testIdentities ?? 1200;
    this.testImagesPerIdentity = o.testImagesPerIdentity ?? 10;
    this.nuisance = o.nuisance ?? 1;
    for (const [k, v] of Object.entries({ size: this.size, trainIdentities: this.trainIdentities, imagesPerIdentity: this.imagesPerIdentity, testIdentities: this.testIdentities, testImagesPerIdentity: this.testImagesPerIdentity })) {
      if (!Number.isInteger(v) || v < 1) throw new DataError(`SyntheticFaces: ${k} must be a positive integer, got ${v}`);
    }
    if (this.size < 8) throw new DataError(`SyntheticFaces: size ${this.size} is too small to draw a face`);
  }

  /** Traits of an identity (any non-negative integer; test identities start at trainIdentities). */
  identity(id: number): FaceTraits {
    let t = this.traits.get(id);
    if (!t) {
      t = drawTraits(createRng(mixSeed(this.seed, 0x1d, id)));
      this.traits.set(id, t);
    }
    return t;
  }

  /** Image `index` of identity `id`. */
  sample(id: number, index: number): FaceSample {
    if (!Number.isInteger(id) || id < 0 || !Number.isInteger(index) || index < 0) {
      throw new DataError(`SyntheticFaces: no image (${id}, ${index})`);
    }
    const rng = createRng(mixSeed(this.seed, 0x1e, id, index));
    const n = drawNuisance(rng, this.nuisance);
    return renderFace(this.identity(id), n, this.size, rng);
  }

  /** Number of training images: trainIdentities x imagesPerIdentity. */
  get trainLength(): number {
    return this.trainIdentities * this.imagesPerIdentity;
  }

  /** Training image i (identity-major order) and its label. */
  trainSample(i: number): FaceSample & { label: number } {
    if (!Number.isInteger(i) || i < 0 || i >= this.trainLength) throw new DataError(`SyntheticFaces: training index ${i} outside 0..${this.trainLength - 1}`);
    const label = Math.floor(i / this.imagesPerIdentity);
    return { ...this.sample(label, i % this.imagesPerIdentity), label };
  }

  /** Test identity k (0-based among test identities) as an identity number. */
  testIdentity(k: number): number {
    return this.trainIdentities + k;
  }

  /**
   * LFW-style pairs over the test identities: `folds` folds, each of `perFold` same pairs then
   * `perFold` different pairs, with the identities of different folds disjoint (as in LFW's
   * View 2). Default 10 x (300 + 300) = 6000 pairs.
   */
  pairs(o: { folds?: number; perFold?: number; seed?: number } = {}): FacePair[] {
    const folds = o.folds ?? 10, perFold = o.perFold ?? 300;
    const per = Math.floor(this.testIdentities / folds);
    if (per < 2) throw new DataError(`SyntheticFaces.pairs: ${this.testIdentities} test identities cannot fill ${folds} identity-disjoint folds`);
    if (this.testImagesPerIdentity < 2) throw new DataError('SyntheticFaces.pairs: same pairs need at least 2 test images per identity');
    const m = this.testImagesPerIdentity;
    // Pairs are distinct within a fold: refuse a count the fold's identities cannot provide.
    const samePossible = (per * m * (m - 1)) / 2;
    const differentPossible = per * (per - 1) * m * m;
    if (perFold > samePossible || perFold > differentPossible) {
      throw new DataError(
        `SyntheticFaces.pairs: ${perFold} pairs per fold need more test data: ${this.testIdentities} test identities make ${per} per fold with ${m} images each, ` +
        `${samePossible} distinct same pairs and ${differentPossible} different ones; raise testIdentities or imagesPerIdentity, or lower perFold`,
      );
    }
    const rng = createRng(mixSeed(this.seed, 0x1f, o.seed ?? 0));
    const out: FacePair[] = [];
    for (let f = 0; f < folds; f++) {
      const idOf = (k: number) => this.testIdentity(f * per + k);
      const seen = new Set<string>();
      const push = (p: FacePair) => {
        const key = `${p.a.identity}:${p.a.index}:${p.b.identity}:${p.b.index}`;
        if (seen.has(key)) return false;
        seen.add(key);
        out.push(p);
        return true;
      };
      for (let i = 0; i < perFold;) {
        const id = idOf(rng.int(per));
        const a = rng.int(m);
        const b = (a + 1 + rng.int(m - 1)) % m;
        if (push({ a: { identity: id, index: Math.min(a, b) }, b: { identity: id, index: Math.max(a, b) }, same: true, fold: f })) i++;
      }
      for (let i = 0; i < perFold;) {
        const x = rng.int(per);
        const y = (x + 1 + rng.int(per - 1)) % per;
        if (push({ a: { identity: idOf(x), index: rng.int(m) }, b: { identity: idOf(y), index: rng.int(m) }, same: false, fold: f })) i++;
      }
    }
    return out;
  }
}
