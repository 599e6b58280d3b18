/**
 * Colour ramps: piecewise-linear between stops, for the needle heat map (src/eval/heatmap.ts) and
 * the demo's attention picture (demo/picture.ts).
 */

export type Rgb = readonly [number, number, number];

/** A ramp's stop: the colour at position t. A ramp lists its stops by ascending t. */
export interface ColourStop {
  t: number;
  rgb: Rgb;
}

/** The ramp's colour at t (clamped to its first and last stop), linear between neighbouring stops, channels rounded. */
export function colourAt(stops: readonly ColourStop[], t: number): [number, number, number] {
  const first = stops[0]!.t;
  const last = stops[stops.length - 1]!.t;
  const x = Math.max(first, Math.min(last, t));
  let i = 1;
  while (i < stops.length - 1 && stops[i]!.t < x) i++;
  const a = stops[i - 1]!;
  const b = stops[i]!;
  const f = (x - a.t) / (b.t - a.t);
  return [0, 1, 2].map((c) => Math.round(a.rgb[c]! + f * (b.rgb[c]! - a.rgb[c]!))) as [number, number, number];
}

/** "#rrggbb". */
export function hexColour(rgb: Rgb): string {
  return `#${rgb.map((x) => x.toString(16).padStart(2, '0')).join('')}`;
}
