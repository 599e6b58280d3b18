/**
 * A needle grid as an SVG heat map, laid out like the needle figures of MInference and RULER:
 * context length across, needle depth down (0% at the top), each cell coloured from red (wrong)
 * through yellow to green (right) by the share of its documents answered right.
 */
import { formatTokens, type NiahGrid } from './niah.ts';
import { colourAt, hexColour, type ColourStop } from '../util/colour.ts';

const CELL_W = 56;
const CELL_H = 26;
const LEFT = 64;
const TOP = 46;
const BOTTOM = 44;
const RIGHT = 16;

/** Red (0) -> yellow (0.5) -> green (1). */
const SCORE_RAMP: readonly ColourStop[] = [
  { t: 0, rgb: [215, 48, 39] },
  { t: 0.5, rgb: [254, 224, 139] },
  { t: 1, rgb: [26, 152, 80] },
];

/** A share of right answers as a colour: red (0) -> yellow (0.5) -> green (1); not a number: red. */
export function scoreColor(score: number): string {
  return hexColour(colourAt(SCORE_RAMP, Number.isFinite(score) ? score : 0));
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function niahHeatmapSvg(grid: NiahGrid, title = `${grid.label}: ${(grid.mean * 100).toFixed(1)}% exact match`): string {
  const { lengths, depths } = grid;
  const width = LEFT + lengths.length * CELL_W + RIGHT;
  const height = TOP + depths.length * CELL_H + BOTTOM;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  depths.forEach((d, r) => {
    const y = TOP + r * CELL_H;
    parts.push(`<text x="${LEFT - 6}" y="${y + CELL_H / 2 + 4}" text-anchor="end">${Math.round(d * 100)}%</text>`);
    lengths.forEach((L, c) => {
      const cell = grid.cases.filter((x) => x.length === L && x.depth === d);
      const score = cell.length ? cell.filter((x) => x.correct).length / cell.length : NaN;
      const x = LEFT + c * CELL_W;
      const label = Number.isNaN(score) ? 'n/a' : cell.length === 1 ? (score === 1 ? '✓' : '✗') : `${Math.round(score * 100)}`;
      parts.push(
        `<rect x="${x}" y="${y}" width="${CELL_W - 1}" height="${CELL_H - 1}" fill="${Number.isNaN(score) ? '#dddddd' : scoreColor(score)}">` +
          `<title>${formatTokens(L)} tokens, depth ${Math.round(d * 100)}%: ${cell.map((x) => escapeXml(JSON.stringify(x.answer))).join(', ')}</title></rect>`,
        `<text x="${x + CELL_W / 2}" y="${y + CELL_H / 2 + 4}" text-anchor="middle">${label}</text>`,
      );
    });
  });
  lengths.forEach((L, c) => {
    parts.push(`<text x="${LEFT + c * CELL_W + CELL_W / 2}" y="${TOP + depths.length * CELL_H + 16}" text-anchor="middle">${formatTokens(L)}</text>`);
  });
  parts.push(
    `<text x="${LEFT + (lengths.length * CELL_W) / 2}" y="${height - 8}" text-anchor="middle">context length (tokens)</text>`,
    `<text x="14" y="${TOP + (depths.length * CELL_H) / 2}" text-anchor="middle" transform="rotate(-90 14 ${TOP + (depths.length * CELL_H) / 2})">needle depth</text>`,
    '</svg>',
  );
  return parts.join('\n');
}

/** Several grids' heat maps stacked in one SVG. */
export function niahHeatmapsSvg(grids: readonly NiahGrid[]): string {
  const maps = grids.map((g) => niahHeatmapSvg(g));
  const sizes = maps.map((m) => /width="(\d+)" height="(\d+)"/.exec(m)!.slice(1).map(Number) as [number, number]);
  const width = Math.max(...sizes.map(([w]) => w));
  const height = sizes.reduce((a, [, h]) => a + h, 0);
  let y = 0;
  const parts = maps.map((m, i) => {
    const inner = m.replace('<svg ', `<svg x="0" y="${y}" `);
    y += sizes[i]![1];
    return inner;
  });
  return [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`, ...parts, '</svg>'].join('\n');
}
