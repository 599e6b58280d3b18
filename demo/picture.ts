/**
 * The attention picture's pixels and words (pure functions, unit-tested in test/demo-picture.test.ts).
 * A picture (src/search/picture.ts) holds maps of [rows, bins] values: the last query block's rows
 * down, key bins across, each value the share of the row's softmax mass in the bin. They become RGBA
 * pixels on a log scale, so that weights of a millionth still show; one scale draws the dense map
 * and the part a pattern keeps, so a kept bin looks the same in both and a skipped one goes dark.
 */
import type { AttentionPicture } from '../src/search/picture.ts';
import { formatPercent } from '../src/util/numbers.ts';
import { colourAt, type ColourStop, type Rgb } from '../src/util/colour.ts';

/** Mass at or under this is drawn as background: six decades under a whole row's mass (1). */
export const PICTURE_FLOOR = 1e-6;

/** No mass (future keys, skipped keys, mass under the floor). */
export const BACKGROUND: Rgb = [12, 15, 26];

/**
 * The ramp from the floor (t = 0) to a whole row's mass (t = 1): dark blue, blue, green, yellow,
 * near white. Its first stop is far enough from the background that the smallest weight shown is seen.
 */
const RAMP: readonly ColourStop[] = [
  { t: 0, rgb: [44, 48, 118] },
  { t: 0.35, rgb: [36, 120, 172] },
  { t: 0.6, rgb: [62, 182, 140] },
  { t: 0.85, rgb: [226, 214, 82] },
  { t: 1, rgb: [255, 250, 226] },
];

/** A mass's place on the log scale: 0 just over the floor, 1 at 1; undefined at or under the floor (background). */
export function logPosition(mass: number, floor = PICTURE_FLOOR): number | undefined {
  if (!(mass > floor)) return undefined;
  return Math.min(1, Math.log(mass / floor) / Math.log(1 / floor));
}

/** The ramp's colour at t in [0, 1] (clamped), linear between its stops. */
export function rampColour(t: number): [number, number, number] {
  return colourAt(RAMP, t);
}

/** RGBA pixels of a [rows, bins] map of masses, row-major as ImageData holds them. */
export function pictureImage(map: Float32Array, rows: number, bins: number, floor = PICTURE_FLOOR): Uint8ClampedArray {
  if (map.length !== rows * bins) throw new RangeError(`pictureImage: ${map.length} values for ${rows} x ${bins}`);
  const px = new Uint8ClampedArray(rows * bins * 4);
  for (let i = 0; i < map.length; i++) {
    const t = logPosition(map[i]!, floor);
    const [r, g, b] = t === undefined ? BACKGROUND : rampColour(t);
    px.set([r, g, b, 255], i * 4);
  }
  return px;
}

/** The legend: the ramp as a CSS gradient, left (the floor) to right (1). */
export function rampGradient(): string {
  return `linear-gradient(to right, ${RAMP.map((s) => `rgb(${s.rgb.join(' ')}) ${(s.t * 100).toFixed(0)}%`).join(', ')})`;
}

/**
 * Share of the block's causal query-key pairs the pattern computes: each row's kept share of a bin
 * (keptKeys) weighted by the bin's keys that row sees (row i sees keys 0..i).
 */
export function keptKeyShare(p: Pick<AttentionPicture, 'rowStart' | 'rows' | 'bins' | 'binKeys' | 'keptKeys'>): number {
  let kept = 0;
  let all = 0;
  for (let r = 0; r < p.rows; r++) {
    const seen = p.rowStart + r + 1;
    for (let b = 0; b < p.bins; b++) {
      const keys = Math.max(0, Math.min((b + 1) * p.binKeys, seen) - b * p.binKeys);
      kept += p.keptKeys[r * p.bins + b]! * keys;
      all += keys;
    }
  }
  return all > 0 ? kept / all : 0;
}

/** "keeps 94.6% of the attention mass, computes 30.0% of the keys" (of the last query block). */
export function pictureCaption(p: Pick<AttentionPicture, 'recall' | 'rowStart' | 'rows' | 'bins' | 'binKeys' | 'keptKeys'>): string {
  return `keeps ${formatPercent(p.recall)} of the attention mass, computes ${formatPercent(keptKeyShare(p))} of the keys`;
}
