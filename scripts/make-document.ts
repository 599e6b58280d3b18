/**
 * A long synthetic document for the long-context demo: the logbook of a fictional river-valley water
 * board, many short dated records (gauge readings, repairs, deliveries, visits, weather), with one
 * "needle" record planted at a chosen depth and a question that only that record answers.
 *
 * Everything is generated from a seeded PRNG, so the same options give the same text, byte for
 * byte, in Node, Deno and the browser (its one import is the PRNG, so the demo page bundles it).
 *
 *   npx tsx scripts/make-document.ts --out doc.txt [--words 16000] [--seed 1] [--depth 0.5]
 *
 * writes the text to doc.txt and {question, expectedAnswer, ...} to doc.json beside it.
 */

import { mulberry32 } from '../src/util/prng.ts';

export interface DocumentOptions {
  /** Approximate length in words (the result overshoots by less than one record). Default 16000. */
  words?: number;
  /** PRNG seed; also picks the needle's place and hiding spot. Default 1. */
  seed?: number;
  /** Where the needle goes, as a fraction of the document: 0 = first record, 1 = last. Default 0.5. */
  needleDepth?: number;
}

export interface SyntheticDocument {
  text: string;
  question: string;
  expectedAnswer: string;
  /** Words actually written (whitespace-separated). */
  words: number;
  /** Word offset at which the needle record starts. */
  needleWordOffset: number;
  seed: number;
  needleDepth: number;
}

export const DEFAULT_DOCUMENT_WORDS = 16_000;
/** Small enough for a SwiftShader prefill in a test (a few hundred tokens with the question). */
export const TINY_DOCUMENT_WORDS = 60;



const STATIONS = [
  'Alder Ford', 'Birchmouth', 'Cinder Weir', 'Dovecote Mill', 'Elmstead Sluice', 'Fallow Bend', 'Greywater Lock',
  'Hollin Cross', 'Ivybridge Intake', 'Juniper Reach', 'Kettle Pool', 'Larkspur Dam', 'Marten Falls', 'Nettlebank',
  'Otterholt', 'Pike Shallows', 'Quarry Cut', 'Rushmere', 'Sedge Hollow', 'Tanner Gate', 'Upper Wend', 'Vole Island',
  'Willowgarth', 'Yarrow Steps',
] as const;
const STAFF = [
  'Ada Brightwell', 'Bram Okafor', 'Cora Lindqvist', 'Dmitri Vale', 'Edda Sorensen', 'Felix Amara', 'Greta Holm',
  'Hugo Pennick', 'Iris Takeda', 'Jonas Mbeki', 'Kira Faulds', 'Leon Castell', 'Mara Quist', 'Nils Ferreira',
  'Opal Rennick', 'Piet Achterberg', 'Rosa Delacroix', 'Sami Whitlow', 'Tove Jansson-Reed', 'Ulla Marsh',
] as const;
const WEATHER = [
  'clear and cold', 'light drizzle through the morning', 'heavy rain after noon', 'fog on the lower reach',
  'a dry westerly wind', 'sleet showers', 'overcast but calm', 'thunder to the north, no rain here', 'warm and still',
  'hail for ten minutes at dusk',
] as const;
const PARTS = [
  'a gate seal', 'the float chain', 'two hinge pins', 'the screen rake', 'a cracked inspection hatch', 'the stilling-well pipe',
  'a worn winch cable', 'the telemetry battery', 'three fence posts', 'the rain-gauge funnel', 'a seized valve spindle',
  'the footbridge planks',
] as const;
const GOODS = [
  'sandbags', 'tarred rope', 'lamp oil', 'spare padlocks', 'gravel for the towpath', 'chart paper', 'grease cartridges',
  'timber for the boom', 'sealant', 'survey pegs',
] as const;
const VISITORS = [
  'a school group', 'the district surveyor', 'two anglers asking about permits', 'a farmer reporting a blocked culvert',
  'the insurance assessor', 'a student measuring sediment', 'the county ecologist', 'a delivery driver who was lost',
] as const;
const WILDLIFE = [
  'a heron on the weir crest', 'otter tracks in the silt', 'a pair of kingfishers', 'eels in the fish pass',
  'a swan nesting by the sluice', 'mink near the boathouse', 'dragonflies over the overflow channel',
] as const;

// The needle: where a spare key is hidden. Both lists are disjoint from every word above, so the
// answer cannot be guessed from the rest of the document.
const NEEDLE_COLOURS = ['blue', 'yellow', 'green', 'red', 'orange', 'white'] as const;
const NEEDLE_HIDES = [
  'teapot on the boiler shelf', 'biscuit tin under the map table', 'boot by the back door', 'flowerpot beside the barometer',
  'toolbox marked "winter"', 'lantern hanging in the porch',
] as const;
const NEEDLE_BUILDINGS = ['north pump house', 'old signal cabin', 'east valve tower', 'boat store'] as const;

function pick<T>(rnd: () => number, list: readonly T[]): T {
  return list[Math.floor(rnd() * list.length)]!;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function dateText(dayIndex: number): string {
  let year = 1961;
  let d = dayIndex;
  for (;;) {
    let m = 0;
    while (m < 12 && d >= MONTH_DAYS[m]!) d -= MONTH_DAYS[m++]!;
    if (m < 12) return `${d + 1} ${MONTHS[m]} ${year}`;
    year++;
  }
}

function record(rnd: () => number, n: number, day: number): string {
  const station = pick(rnd, STATIONS);
  const who = pick(rnd, STAFF);
  const head = `Record ${n}, ${dateText(day)}, ${station}.`;
  const level = (0.4 + rnd() * 3.1).toFixed(2);
  const flow = Math.round(20 + rnd() * 480);
  switch (Math.floor(rnd() * 6)) {
    case 0:
      return `${head} Gauge read ${level} m at ${6 + Math.floor(rnd() * 12)}:${String(Math.floor(rnd() * 60)).padStart(2, '0')}; flow estimated at ${flow} litres per second. Weather ${pick(rnd, WEATHER)}. Logged by ${who}.`;
    case 1:
      return `${head} ${who} replaced ${pick(rnd, PARTS)}. Work took ${1 + Math.floor(rnd() * 7)} hours; the level was ${level} m when the crew left. ${rnd() < 0.5 ? 'No further action needed.' : `Follow-up booked with ${pick(rnd, STAFF)}.`}`;
    case 2:
      return `${head} Delivery of ${pick(rnd, GOODS)} (${2 + Math.floor(rnd() * 40)} units) signed for by ${who}. Stored in the ${rnd() < 0.5 ? 'lower' : 'upper'} shed. Weather ${pick(rnd, WEATHER)}.`;
    case 3:
      return `${head} Visit from ${pick(rnd, VISITORS)}, shown around by ${who}. ${rnd() < 0.5 ? 'They left before noon.' : 'They stayed for the afternoon reading.'} Gauge ${level} m.`;
    case 4:
      return `${head} ${who} noted ${pick(rnd, WILDLIFE)}. Water ${rnd() < 0.5 ? 'clear' : 'cloudy'}, level ${level} m, flow about ${flow} litres per second.`;
    default:
      return `${head} Night patrol by ${who}: all gates shut, lamps relit: ${Math.floor(rnd() * 4)}, ${rnd() < 0.3 ? 'one padlock found rusted and oiled' : 'nothing out of order'}. Weather ${pick(rnd, WEATHER)}.`;
  }
}

function countWords(s: string): number {
  let n = 0;
  for (const w of s.split(/\s+/)) if (w) n++;
  return n;
}

export function makeDocument(options: DocumentOptions = {}): SyntheticDocument {
  const words = options.words ?? DEFAULT_DOCUMENT_WORDS;
  const seed = options.seed ?? 1;
  const needleDepth = options.needleDepth ?? 0.5;
  if (!Number.isInteger(words) || words < 1) throw new RangeError(`makeDocument: words must be a positive integer, got ${words}`);
  if (!Number.isInteger(seed)) throw new RangeError(`makeDocument: seed must be an integer, got ${seed}`);
  if (!(needleDepth >= 0 && needleDepth <= 1)) throw new RangeError(`makeDocument: needleDepth must be in [0, 1], got ${needleDepth}`);

  const rnd = mulberry32(seed);
  const building = pick(rnd, NEEDLE_BUILDINGS);
  const hide = `the ${pick(rnd, NEEDLE_COLOURS)} ${pick(rnd, NEEDLE_HIDES)}`;
  const keeper = pick(rnd, STAFF);
  const needleText = `Note added by ${keeper}: the spare key to the ${building} is kept inside ${hide}. Tell nobody outside the board.`;
  const needleWords = countWords(needleText);

  const title = 'Logbook of the Wend Valley Water Board (fictional; generated text).';
  const parts: string[] = [title];
  let total = countWords(title);
  const target = Math.max(0, words - needleWords);
  const needleAt = Math.round(needleDepth * target);
  let planted = false;
  let needleWordOffset = 0;
  let n = 1;
  let day = Math.floor(rnd() * 300);
  const plant = (): void => {
    needleWordOffset = total;
    parts.push(needleText);
    total += needleWords;
    planted = true;
  };
  while (total < words) {
    if (!planted && total - countWords(title) >= needleAt) {
      plant();
      continue;
    }
    const r = record(rnd, n++, day);
    day += Math.floor(rnd() * 3); // several records can share a day
    parts.push(r);
    total += countWords(r);
  }
  if (!planted) plant();

  return {
    text: parts.join('\n'),
    question: `Where is the spare key to the ${building} kept?`,
    expectedAnswer: `inside ${hide}`,
    words: total,
    needleWordOffset,
    seed,
    needleDepth,
  };
}

// ---- command line (Node only; the page imports makeDocument and never reaches this) ----

function parseArgs(argv: string[]): { out: string; opts: DocumentOptions } {
  const opts: DocumentOptions = {};
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    const num = (): number => {
      const x = Number(v);
      if (v === undefined || !Number.isFinite(x)) throw new Error(`${a} needs a number`);
      i++;
      return x;
    };
    if (a === '--out') {
      if (!v) throw new Error('--out needs a path');
      out = v;
      i++;
    } else if (a === '--words') opts.words = num();
    else if (a === '--seed') opts.seed = num();
    else if (a === '--depth') opts.needleDepth = num();
    else if (a === '--tiny') opts.words = TINY_DOCUMENT_WORDS;
    else throw new Error(`unknown argument ${a} (use --out PATH [--words N | --tiny] [--seed N] [--depth 0..1])`);
  }
  if (!out) throw new Error('usage: make-document.ts --out PATH [--words N | --tiny] [--seed N] [--depth 0..1]');
  return { out, opts };
}

/** Writes the document to `path` and its question/answer to the same path with a .json extension. */
export async function writeDocument(path: string, options: DocumentOptions = {}): Promise<SyntheticDocument> {
  const fs = await import('node:fs/promises');
  const nodePath = await import('node:path');
  const doc = makeDocument(options);
  await fs.mkdir(nodePath.dirname(path), { recursive: true });
  await fs.writeFile(path, doc.text);
  const { text: _text, ...meta } = doc;
  await fs.writeFile(path.replace(/\.[^./\\]*$/, '') + '.json', JSON.stringify(meta, null, 2) + '\n');
  return doc;
}

const isMain = typeof process !== 'undefined' && Array.isArray(process.argv) && /make-document\.ts$/.test(process.argv[1] ?? '');
if (isMain) {
  try {
    const { out, opts } = parseArgs(process.argv.slice(2));
    const doc = await writeDocument(out, opts);
    console.log(`wrote ${out}: ${doc.words} words, needle at word ${doc.needleWordOffset}; Q: ${doc.question} A: ${doc.expectedAnswer}`);
  } catch (e) {
    console.error((e as Error).message);
    process.exitCode = 1;
  }
}
