// Every method that ends as a plain LoRA (AdapterMethod.savesAsLora) saved
// through saveAdapterAsLora loads as PEFT's LoRA (rank_pattern, alpha_pattern,
// exclude_modules) and gives the outputs of the method's own adapter (1e-5),
// with part of its ranks closed the method's own way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { METHODS } from '../src/adapters/registry.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { loadPeftAdapter, readAdapter } from '../src/peft/adapter_files.ts';
import { saveAdapterAsLora } from '../src/peft/as_lora.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { adapterFolders } from './helpers/method_folders.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const TARGETS = ['encoder.layer.0.attention.qkv', 'encoder.layer.0.ffn.conv2', 'encoder.layer.1.attention.output'];

/** Closes ranks the method's own way: a gate at 0, a singular value at 0, a module dropped. */
const CLOSE: Record<string, (set: AdapterSet) => void> = {
  sora: (s) => s.params.get(`base_model.model.${TARGETS[0]}.lora_gate`)!.fill(0, 0, 2),
  codyra: (s) => s.params.get(`base_model.model.${TARGETS[0]}.lora_gate`)!.fill(0, 1, 3),
  adalora: (s) => s.params.get(`base_model.model.${TARGETS[1]}.lora_E`)!.fill(0, 0, 3),
  increlora: (s) => s.params.get(`base_model.model.${TARGETS[1]}.lora_E`)!.fill(0, 0, 1),
  diffora: (s) => (s.state as any).mode.get(TARGETS[2]).set([0, 0]),
  'bayesian-lora': (s) => s.params.get(`base_model.model.${TARGETS[0]}.rank_log_alpha`)!.fill(-30, 0, 2),
};

test('each method that prunes saves as a PEFT LoRA with the same outputs (1e-5), closed ranks left out', async () => {
  const model = await loadUseEncoder();
  const folders = await adapterFolders();
  const tok = UseTokenizer.fromVocabFile();
  const batch = padBatch(['A wonderful, moving film.', 'Terrible plot; I walked out.', 'Loved it!'].map((t) => tok.encode(t)));
  const run = async (s: AdapterSet) => {
    const pm = new PeftModel(model, { threads: 1 });
    pm.addAdapter('x', s);
    const o = (await pm.run(batch)).data as Float32Array;
    await pm.release();
    return o;
  };
  const pruning = Object.values(METHODS).filter((m) => m.savesAsLora);
  assert.deepEqual(pruning.map((m) => m.name).sort(), Object.keys(CLOSE).sort(), 'every pruning method has a case here');
  for (const m of pruning) {
    const tc = folders.find((f) => f.methods.includes(m))!.testConfig as { config: Record<string, unknown> };
    const set = new AdapterSet(m, m.schema.parse(tc.config), model.sites, model.weights, { targetModules: TARGETS, seed: 5 });
    for (const [k, v] of set.params) if (!/log_alpha|gate/.test(k)) for (let i = 0; i < v.length; i += 5) v[i] += 0.02; // "trained"
    const before = set.targets.map((s) => set.factorsFor(s).r);
    CLOSE[m.name](set);
    const after = set.targets.map((s) => set.factorsFor(s).r);
    assert.ok(after.some((r, i) => r < before[i]), `${m.name}: closing ranks lowers a module's rank (${before} → ${after})`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-aslora-${m.name}-`));
    const res = saveAdapterAsLora(dir, set, { baseModel: 'use' });
    assert.deepEqual(Object.values(res.ranks), after);
    const file = readAdapter(dir);
    assert.equal(file.config.peft_type, 'LORA');
    const loaded = loadPeftAdapter(model, dir, { warn: () => {} }).set;
    assert.equal(loaded.method.name, 'lora');
    assert.deepEqual(loaded.targets.map((s) => s.name), TARGETS.filter((_, i) => after[i] > 0));
    const d = maxAbsDiff(await run(set), await run(loaded));
    assert.ok(d < 1e-5, `${m.name}: LoRA form vs own adapter ${d}`);
  }
});
