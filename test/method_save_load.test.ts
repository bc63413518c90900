// Adapters of the non-LoRA methods save their own peft_type and config fields,
// and reload into an identical adapter (as `lorakit eval` does).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { loadAdapterWeights, readAdapter, saveAdapter } from '../src/peft/adapter_files.ts';

let model: EncoderModel;
before(async () => {
  model = await loadUseEncoder();
});

const cases: [string, Record<string, unknown>][] = [
  ['vera', { r: 16, d_initial: 0.5, projection_prng_key: 3 }],
  ['loraxs', { r: 4 }],
  ['hydra', { r_seq: 2, r_par: 3 }],
];

for (const [name, options] of cases) {
  test(`${name}: save → load keeps peft_type, non-default config and every parameter`, () => {
    const method = getMethod(name);
    const config = method.schema.parse(options);
    const set = new AdapterSet(method, config, model.sites, model.weights, { targetModules: ['qkv'], seed: 2 });
    for (const v of set.params.values()) for (let i = 0; i < v.length; i++) v[i] += 0.01 * ((i % 7) - 3); // not the init values
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-`));
    saveAdapter(dir, set, { baseModel: 'use' });
    const saved = readAdapter(dir);
    assert.equal(saved.config.peft_type, method.peftType);
    assert.deepEqual(saved.config.target_modules, ['qkv']);
    for (const [k, v] of Object.entries(options)) assert.deepEqual(saved.config[k], v, k);
    const again = getMethod(saved.config.lorakit.method);
    const parsed = again.schema.parse(saved.config);
    assert.deepEqual(parsed, config);
    const fresh = new AdapterSet(again, parsed, model.sites, model.weights, { targetModules: saved.config.target_modules, seed: saved.config.lorakit.seed });
    loadAdapterWeights(fresh, saved);
    assert.deepEqual([...fresh.params.keys()], [...set.params.keys()]);
    for (const [k, v] of set.params) assert.deepEqual(fresh.params.get(k), v, k);
  });
}
