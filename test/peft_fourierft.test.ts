// PEFT → lorakit for FourierFT: an adapter as PEFT saves it (fourierft_spectrum
// per module, locations regenerated from random_loc_seed with torch.randperm,
// per-module n_frequency_pattern), written by tools/reference/peft_fourierft.py
// (PEFT's semantics in plain PyTorch on the tiny reference model). lorakit
// must put each coefficient at PEFT's location and give the reference's logits,
// unmerged and merged, and again after re-saving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadPeftAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { mergeAdapters } from '../src/peft/export.ts';
import { fourierftIndices } from '../src/adapters/fourierft/index.ts';
import { moduleConfig } from '../src/adapters/fourierft/config.ts';
import { PEFT_REF, refInputs, refLogits, tinyModel } from './helpers/tiny_model.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const DIR = path.join(PEFT_REF, '..', 'peft_fourierft');
const EXP = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8'));

test('PEFT → lorakit: FourierFT at PEFT\'s locations (n_frequency_pattern too) gives the reference logits, unmerged and merged', async () => {
  const model = tinyModel();
  const { set } = loadPeftAdapter(model, DIR, { warn: () => {} });
  assert.equal(set.method.name, 'fourierft');
  assert.deepEqual(set.targets.map((s) => s.name).sort(), Object.keys(EXP.modules).sort());
  for (const site of set.targets) {
    const want = EXP.modules[site.name];
    const c = moduleConfig(set.configFor(site), site.name);
    assert.equal(c.n_frequency, want.n_frequency, `${site.name}: n_frequency`);
    const { u, v } = fourierftIndices(site.outFeatures, site.inFeatures, c);
    assert.deepEqual(Array.from(u, (uu, k) => uu * site.inFeatures + v[k]), want.locations, `${site.name}: locations`);
  }
  const un = await refLogits(model, set);
  assert.ok(maxAbsDiff(un, refInputs.base_logits) > 1e-2, 'the adapter must change outputs');
  assert.ok(maxAbsDiff(un, EXP.unmerged) < 1e-4, `unmerged max |Δ| ${maxAbsDiff(un, EXP.unmerged)}`);
  const merged = await refLogits(model.withWeights(mergeAdapters(model, [DIR], undefined, () => {})));
  assert.ok(maxAbsDiff(merged, EXP.merged) < 1e-4, `merged max |Δ| ${maxAbsDiff(merged, EXP.merged)}`);

  // Re-saved by lorakit (only the seed and the spectra, as PEFT), reloaded: the same outputs.
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-fourierft-resave-'));
  saveAdapter(out, set, { baseModel: 'lorakit-tiny-reference' });
  const saved = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8'));
  assert.equal(saved.peft_type, 'FOURIERFT');
  assert.equal(saved.random_loc_seed, 777);
  assert.deepEqual(saved.n_frequency_pattern, { up_proj: 40, 'model.layers.1.mlp.down_proj': 10 });
  assert.equal(maxAbsDiff(await refLogits(model, loadPeftAdapter(model, out, { warn: () => {} }).set), un), 0);
});
