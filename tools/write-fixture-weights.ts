// Writes only config.json and model.safetensors of every fixture (no tokenizer files) into a folder:
// what tools/hf_reference.py needs, small enough to bundle and run on the GPU machine, where the
// tokenizer packages are not installed. Same seeded weights as scripts/make-fixtures.ts (sharded
// fixtures are written as one file here: the tensors are identical).
//   npx esbuild tools/write-fixture-weights.ts --bundle --platform=node --format=esm --outfile=dist/hfref/gen.mjs
//   OUT_DIR=/tmp/w node -e "import('./dist/hfref/gen.mjs')"
// (imported, not run as the entry: make-fixtures.ts runs its own CLI when it is the entry file)
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';
import { FIXTURES, fixtureConfig, fixtureTensors } from '../scripts/make-fixtures.ts';
import { encodeSafetensors } from '../src/model/safetensors.ts';

const out = process.env.OUT_DIR ?? '.fixtures-weights';
for (const spec of Object.values(FIXTURES)) {
  const dir = join(out, spec.name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.safetensors'), encodeSafetensors(fixtureTensors(spec), { format: 'pt' }));
  await writeFile(join(dir, 'config.json'), JSON.stringify(fixtureConfig(spec), null, 2));
  console.log(`wrote ${dir}`);
}
