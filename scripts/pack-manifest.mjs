// `npm pack` / `npm publish` hooks (prepack, postpack): the published package.json must not carry
// the `prepare` script. npm never runs `prepare` for a registry or tarball install (dist/ is in the
// tarball), but npm 11 still lists it as an install script "not yet covered by allowScripts" in
// every project that installs the package. `strip` renames it to `_prepare` for the pack (as pinst
// does for postinstall); `restore` puts it back.
//
//   node scripts/pack-manifest.mjs strip|restore
import { readFileSync, writeFileSync } from 'node:fs';

const [from, to] = process.argv[2] === 'strip' ? ['prepare', '_prepare'] : process.argv[2] === 'restore' ? ['_prepare', 'prepare'] : [];
if (!from) throw new Error('usage: pack-manifest.mjs strip|restore');
const text = readFileSync('package.json', 'utf8');
const pkg = JSON.parse(text);
if (pkg.scripts?.[from] !== undefined) {
  // Rename in place, keeping the key order and formatting of the rest of the file.
  writeFileSync('package.json', text.replace(`"${from}":`, `"${to}":`));
}
