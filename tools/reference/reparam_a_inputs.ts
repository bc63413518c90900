// Step 1 of the reparam_a reference (run: npx tsx tools/reference/reparam_a_inputs.ts):
// NOLA's frozen bases as lorakit draws them (its own seeded stream, from
// basis_seed and the module name) for the two sites of the test, to
// test/fixtures/reparam_a_inputs.json: the one input tools/reference/reparam_a.py
// takes from lorakit (it checks them against NOLA's definition, and makes
// everything else itself). Step 2: /usr/bin/python3 tools/reference/reparam_a.py.
import fs from 'node:fs';
import { nola, nolaBases } from '../../src/adapters/nola/index.ts';
import { CASES, SITES } from '../../test/helpers/reparam_a_cases.ts';

const arr = (a: ArrayLike<number>) => Array.from(a, (v) => Number(v));
const config = nola.schema.parse(CASES.find((c) => c.name === 'nola')!.config);
const sites: Record<string, unknown> = {};
for (const s of SITES) {
  const b = nolaBases(s, config);
  sites[s.name] = { A0: arr(b.A0), Abases: arr(b.Ab), Bbases: arr(b.Bb) };
}
fs.writeFileSync('test/fixtures/reparam_a_inputs.json', JSON.stringify({ method: 'nola', config, sites }) + '\n');
console.log('wrote test/fixtures/reparam_a_inputs.json');
