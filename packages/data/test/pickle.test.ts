import { readFileSync } from 'node:fs';
import { FormatError } from '@fr/core';
import { describe, expect, it } from 'vitest';
import { readVerificationBin, writeVerificationBin } from '../src/index.js';

const fixture = (name: string) => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)));
const expectedImages = [
  Buffer.from('\xff\xd8jpeg-a', 'latin1'),
  Buffer.from('\x89PNG-b', 'latin1'),
  Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), Buffer.from(Array.from({ length: 256 }, (_, i) => i))]),
  Buffer.alloc(0),
];

describe('verification .bin (strict pickle)', () => {
  for (const name of ['tiny-p2.bin', 'tiny-p4.bin', 'tiny-p5.bin']) {
    it(`reads ${name} written by CPython`, () => {
      const r = readVerificationBin(fixture(name), name);
      expect(r.issame).toEqual([true, false]);
      expect(r.images.map((b) => Buffer.from(b))).toEqual(expectedImages);
    });
  }

  for (const style of ['py2', 'py3-protocol2', 'protocol4'] as const) {
    it(`round-trips the ${style} writer, with batched APPENDS past 1000 items`, () => {
      const images = Array.from({ length: 2004 }, (_, i) => Uint8Array.from({ length: (i * 37) % 300 }, (_, j) => (i + j) & 255));
      const issame = Array.from({ length: 1002 }, (_, i) => i % 3 === 0);
      const r = readVerificationBin(writeVerificationBin(images, issame, style));
      expect(r.issame).toEqual(issame);
      expect(r.images.length).toBe(images.length);
      expect(r.images.every((b, i) => Buffer.from(b).equals(Buffer.from(images[i])))).toBe(true);
    });
  }

  it('refuses a foreign GLOBAL/REDUCE, naming file, offset and opcode', () => {
    const err = (() => { try { readVerificationBin(fixture('evil.bin'), 'evil.bin'); } catch (e) { return e; } })() as Error;
    expect(err).toBeInstanceOf(FormatError);
    // Protocol 4 writes the class via STACK_GLOBAL after two SHORT_BINUNICODE strings.
    expect(err.message).toMatch(/^evil\.bin: .* at byte \d+ \(opcode (STACK_GLOBAL|SHORT_BINUNICODE|GLOBAL)\)/);
    const bad = new Uint8Array([0x80, 2, 0x63, ...Buffer.from('os\nsystem\n'), 0x2e]);
    expect(() => readVerificationBin(bad, 'x.bin')).toThrow('x.bin: refusing to load global os.system at byte 2 (opcode GLOBAL)');
    expect(() => readVerificationBin(new Uint8Array([0x80, 2, 0x4e, 0x2e]), 'n.bin')).toThrow('n.bin: unsupported opcode at byte 2 (opcode NONE)');
  });

  it('reports truncation and malformed contents', () => {
    const good = writeVerificationBin([new Uint8Array(300), new Uint8Array(3)], [true], 'py2');
    expect(() => readVerificationBin(good.subarray(0, 100), 't.bin')).toThrow(/^t\.bin: truncated: 300 bytes needed, \d+ left at byte \d+ \(opcode BINSTRING\)/);
    expect(() => readVerificationBin(writeVerificationBin([new Uint8Array(1)], [], 'protocol4'), 'o.bin')).toThrow(/1 images do not make 0 pairs/);
  });
});
