// The attention picture's pixels and words (demo/picture.ts): the log scale, the ramp, the RGBA
// image, the share of keys a pattern computes and the caption, on hand-computed examples.
import { describe, expect, it } from 'vitest';
import { BACKGROUND, keptKeyShare, logPosition, pictureCaption, pictureImage, PICTURE_FLOOR, rampColour, rampGradient } from '../demo/picture.ts';

describe('demo attention picture', () => {
  it('places masses on a log scale from the floor (0) to a whole row (1)', () => {
    expect(PICTURE_FLOOR).toBe(1e-6);
    expect(logPosition(1)).toBe(1);
    expect(logPosition(1e-3)).toBeCloseTo(0.5, 12);
    expect(logPosition(1e-5)).toBeCloseTo(1 / 6, 12);
    expect(logPosition(2)).toBe(1); // over a row's mass: clamped
    // At or under the floor, and anything that is not a number over it: background.
    for (const m of [1e-6, 1e-9, 0, -0.5, Number.NaN, Number.NEGATIVE_INFINITY]) expect(logPosition(m)).toBeUndefined();
    expect(logPosition(0.01, 1e-4)).toBeCloseTo(0.5, 12);
  });

  it('runs the ramp from dark blue (t = 0) to near white (t = 1), clamped outside', () => {
    expect(rampColour(0)).toEqual([44, 48, 118]);
    expect(rampColour(1)).toEqual([255, 250, 226]);
    expect(rampColour(-3)).toEqual([44, 48, 118]);
    expect(rampColour(7)).toEqual([255, 250, 226]);
    expect(rampColour(0.35)).toEqual([36, 120, 172]); // a stop
    // The smallest weight drawn stands out from the background.
    const [r, g, b] = rampColour(0);
    expect(Math.abs(r - BACKGROUND[0]) + Math.abs(g - BACKGROUND[1]) + Math.abs(b - BACKGROUND[2])).toBeGreaterThan(100);
    expect(rampGradient()).toBe('linear-gradient(to right, rgb(44 48 118) 0%, rgb(36 120 172) 35%, rgb(62 182 140) 60%, rgb(226 214 82) 85%, rgb(255 250 226) 100%)');
  });

  it('draws a [rows, bins] map as opaque RGBA, background where there is no mass, whatever the values', () => {
    const map = Float32Array.from([1, 1e-3, 0, Number.NaN, -1, 1e-7]);
    const px = pictureImage(map, 2, 3);
    expect(px).toBeInstanceOf(Uint8ClampedArray);
    expect(px.length).toBe(2 * 3 * 4);
    const pixel = (i: number): number[] => Array.from(px.subarray(i * 4, i * 4 + 4));
    expect(pixel(0)).toEqual([...rampColour(1), 255]);
    expect(pixel(1)).toEqual([...rampColour(0.5), 255]);
    for (const i of [2, 3, 4, 5]) expect(pixel(i)).toEqual([...BACKGROUND, 255]); // zero, NaN, negative, under the floor
    // Poison-free: no NaN, every alpha opaque.
    for (let i = 0; i < px.length; i++) expect(Number.isInteger(px[i])).toBe(true);
    for (let i = 3; i < px.length; i += 4) expect(px[i]).toBe(255);
    expect(() => pictureImage(map, 2, 2)).toThrow(RangeError);
    expect(pictureImage(new Float32Array(0), 0, 0).length).toBe(0);
  });

  // Prompt of 4 tokens, last block rows 2..3, 2 bins of 2 keys. Row 2 sees keys 0..2 (bin 0: 2 keys,
  // bin 1: 1 key), row 3 sees 0..3 (2 and 2). Kept shares [1, 0; 0.5, 1]:
  // (1*2 + 0*1 + 0.5*2 + 1*2) / (2 + 1 + 2 + 2) = 5/7.
  const tiny = { rowStart: 2, rows: 2, bins: 2, binKeys: 2, keptKeys: Float32Array.from([1, 0, 0.5, 1]), recall: 0.946 };

  it('counts the share of the block causal query-key pairs the pattern computes', () => {
    expect(keptKeyShare(tiny)).toBeCloseTo(5 / 7, 12);
    expect(keptKeyShare({ ...tiny, keptKeys: Float32Array.from([1, 1, 1, 1]) })).toBe(1);
    expect(keptKeyShare({ ...tiny, keptKeys: new Float32Array(4) })).toBe(0);
    expect(keptKeyShare({ ...tiny, rows: 0, keptKeys: new Float32Array(0) })).toBe(0);
  });

  it('captions the picture with the kept mass and the computed keys', () => {
    expect(pictureCaption(tiny)).toBe('keeps 94.6% of the attention mass, computes 71.4% of the keys');
    expect(pictureCaption({ ...tiny, recall: 1, keptKeys: Float32Array.from([1, 1, 1, 1]) })).toBe('keeps 100.0% of the attention mass, computes 100.0% of the keys');
  });
});
