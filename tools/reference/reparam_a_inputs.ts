// Step 1 of the reparam_a reference (run: npx tsx tools/reference/reparam_a_inputs.ts):
// writes the inputs lorakit generates — W0, x, loss weights, the methods'
// initial params and the frozen tensors lorakit regenerates from seeds / from
// W0 — to test/fixtures/reparam_a_inputs.json. Step 2:
// /usr/bin/python3 tools/reference/reparam_a.py computes the outputs and
// gradients in plain PyTorch and writes test/fixtures/reparam_a.json.
import fs from 'node:fs';
import { CASES, SITES, siteInputs, siteParams, TOKENS } from '../../test/helpers/reparam_a_cases.ts';

const arr = (a: ArrayLike<number>) => Array.from(a, (v) => Number(v));
const out: Record<string, unknown> = { tokens: TOKENS, sites: SITES.map((s) => ({ name: s.name, in: s.inFeatures, out: s.outFeatures })), inputs: {}, methods: {} };
for (const s of SITES) {
  const { W, x, C } = siteInputs(s);
  (out.inputs as any)[s.name] = { W: arr(W), x: arr(x), C: arr(C) };
}
for (const c of CASES) {
  const config = c.method.schema.parse(c.config);
  const per: Record<string, unknown> = {};
  for (const s of SITES) {
    const { W } = siteInputs(s);
    const params = siteParams(c, s, W);
    per[s.name] = {
      params: Object.fromEntries(params.map((p) => [p.key, { shape: p.shape, data: arr(p.data) }])),
      frozen: Object.fromEntries(Object.entries(c.frozen(s, config, W)).map(([k, v]) => [k, arr(v)])),
    };
  }
  (out.methods as any)[c.name] = { config, sites: per };
}
fs.writeFileSync('test/fixtures/reparam_a_inputs.json', JSON.stringify(out) + '\n');
console.log('wrote test/fixtures/reparam_a_inputs.json');
