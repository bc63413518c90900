// Every reparameterization method saves its own peft_type and config fields
// and reloads through the generic PEFT loader (loadPeftAdapter, as `lorakit
// eval/merge/export-onnx` and PeftModel do) into a *fresh* model with identical
// outputs: seeded frozen bases regenerate from the config, W0 factorizations
// from the model, SMoRA's β comes back from the file. Dense-ΔW methods merge
// from the folder through mergeAdapters (the CLI's merge). Bad files fail
// naming the module and both shapes. (The round trip of every tensor, the
// config and the method state on the same model runs for every method in the
// shared harness, test/adapter_suite.test.ts.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet, PEFT_PREFIX } from '../src/adapters/inject.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { TargetError } from '../src/adapters/targets.ts';
import { smoraBias } from '../src/adapters/smora/index.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { AdapterLoadError, loadPeftAdapter, readAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { mergeAdapters } from '../src/peft/export.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { tinyReviews } from './helpers/use_reviews.ts';
import { ClassificationTrainer } from '../src/train/trainer.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

let model: EncoderModel;
let data: { ids: number[]; label: number }[];
before(async () => {
  model = await loadUseEncoder();
  data = tinyReviews();
});

const TARGETS = ['qkv', 'conv2'];
// Non-default fields, so the round trip of the config is checked too.
const CASES: [string, Record<string, unknown>][] = [
  ['vera', { r: 16, d_initial: 0.5, projection_prng_key: 3 }],
  ['nola', { r: 4, num_basis_A: 16, num_basis_B: 8, basis_seed: 5 }],
  ['loraxs', { r: 4 }],
  ['lorasb', { r: 4, init_batches: 2, init_batch_size: 2 }],
  ['loldu', { r: 4 }],
  ['randlora', { r: 64, randlora_alpha: 64, projection_prng_key: 1 }],
  ['hydra', { r_seq: 2, r_par: 3 }],
  ['sltrain', { r: 4, density: 0.01, support_seed: 7 }],
  ['fourierft', { n_frequency: 64, scaling: 300, random_loc_seed: 5 }],
  ['loca', { n_frequency: 64, scaling: 5, random_loc_seed: 9 }],
  ['smora', { num_ranks: 8, top_k: 2 }],
  ['lamda', { r: 4, freeze_fraction: 0.5 }],
];

/** Pooled outputs of `m` with `set` (the trainer feeds hook state such as SMoRA's β). */
async function embed(m: EncoderModel, set: AdapterSet | null): Promise<Float32Array> {
  const t = new ClassificationTrainer(m, set, 2, { epochs: 1, lr: 1e-3, batchSize: 4, seed: 1, buckets: [16] });
  const out = await t.embed(data);
  await t.release();
  return out;
}

/** A "trained" adapter: every parameter moved off its init (LoCA's integer locations stay put). */
function trained(name: string, options: Record<string, unknown>): AdapterSet {
  const method = getMethod(name);
  const set = new AdapterSet(method, method.schema.parse(options), model.sites, model.weights, { targetModules: TARGETS, seed: 2 });
  const step = name === 'vera' ? 0.5 : 0.02; // VeRA's b starts at 0 and scales a rank-16 product of small bases
  for (const [k, v] of set.params) {
    if (k.endsWith('loca_locations')) continue;
    for (let i = 0; i < v.length; i++) v[i] += step * ((i % 7) - 3);
  }
  if (name === 'smora') for (const s of set.targets) smoraBias(set, s.name, 8).set([0.9, -0.4, 0.3, 0, -0.8, 0.5, -0.1, 0.2]);
  return set;
}

const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-${name}-`));

for (const [name, options] of CASES) {
  test(`[${name}] save → loadPeftAdapter into a fresh model: its peft_type and config fields, same outputs; merge via mergeAdapters`, async () => {
    const set = trained(name, options);
    const dir = tmp(name);
    saveAdapter(dir, set, { baseModel: 'use' });
    const saved = readAdapter(dir);
    assert.equal(saved.config.peft_type, set.method.peft.peftType);
    for (const [k, v] of Object.entries(options)) assert.deepEqual(saved.config[k], v, k);

    const fresh = await loadUseEncoder();
    assert.notEqual(fresh, model);
    const loaded = loadPeftAdapter(fresh, dir, { warn: (m) => assert.fail(`unexpected warning: ${m}`) });
    assert.equal(loaded.set.method.name, name);

    const [base, want, got] = [await embed(model, null), await embed(model, set), await embed(fresh, loaded.set)];
    assert.ok(maxAbsDiff(want, base) > 1e-3, 'the adapter must change outputs, or the check proves nothing');
    assert.equal(maxAbsDiff(got, want), 0, `reloaded outputs differ by ${maxAbsDiff(got, want)}`);

    if (set.method.deltaWeight) {
      const merged = await embed(fresh.withWeights(mergeAdapters(fresh, [dir], undefined, () => {})), null);
      assert.ok(maxAbsDiff(merged, want) < 1e-4, `merged vs unmerged max |Δ| ${maxAbsDiff(merged, want)}`);
    } else {
      assert.throws(() => mergeAdapters(fresh, [dir], undefined, () => {}), /no dense ΔW/);
    }
  });
}

test('[smora] β is saved (smora_selection_bias, not trainable) and restored: without it the outputs differ', async () => {
  const set = trained('smora', { num_ranks: 8, top_k: 2 });
  const dir = tmp('smora-beta');
  saveAdapter(dir, set, { baseModel: 'use' });
  const key = `${PEFT_PREFIX}${set.targets[0].name}.smora_selection_bias`;
  const file = readAdapter(dir).tensors;
  assert.deepEqual([...file.get(key)!.data], [...smoraBias(set, set.targets[0].name, 8)]);
  assert.ok(!set.params.has(key), 'β is hook state, not a trainable parameter');
  const loaded = loadPeftAdapter(model, dir);
  assert.deepEqual([...smoraBias(loaded.set, set.targets[0].name, 8)], [...smoraBias(set, set.targets[0].name, 8)]);
  // The same adapter with β = 0 routes differently: β is what the round trip restores.
  const zero = loadPeftAdapter(model, dir);
  for (const s of zero.set.targets) smoraBias(zero.set, s.name, 8).fill(0);
  assert.ok(maxAbsDiff(await embed(model, zero.set), await embed(model, loaded.set)) > 1e-4);
  // PeftModel (loadAdapter / run) feeds β too.
  const tok = UseTokenizer.fromVocabFile();
  const batch = padBatch(['Loved it!', 'Far too long.'].map((t) => tok.encode(t)));
  const [pa, pb] = [new PeftModel(model, { threads: 2 }), new PeftModel(model, { threads: 2 })];
  pa.addAdapter('trained', set);
  pb.loadAdapter(dir, 'default');
  assert.equal(maxAbsDiff((await pa.run(batch)).data as Float32Array, (await pb.run(batch)).data as Float32Array), 0);
  await pa.release();
  await pb.release();
  // A wrong-sized β names the module and both sizes.
  const bad = tmp('smora-bad');
  const t = readSafetensors(path.join(dir, 'adapter_model.safetensors')).tensors;
  const tensors = Object.fromEntries([...t].map(([k, v]) => [k, { dtype: 'F32' as const, shape: k === key ? [5] : v.shape, data: k === key ? new Float32Array(5) : (v.data as Float32Array) }]));
  writeSafetensors(path.join(bad, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  fs.copyFileSync(path.join(dir, 'adapter_config.json'), path.join(bad, 'adapter_config.json'));
  assert.throws(() => loadPeftAdapter(model, bad), (e: Error) => e.message.includes(set.targets[0].name) && /\[5\]/.test(e.message) && /\[8\]/.test(e.message));
});

test('bias and modules_to_save of a non-LoRA adapter round-trip (trained copies saved, reloaded, missing ones refused)', async () => {
  const method = getMethod('hydra');
  const set = new AdapterSet(method, method.schema.parse({ r_seq: 2, r_par: 2, init_weights: false }), model.sites, model.weights, {
    targetModules: ['qkv'], seed: 5, bias: 'lora_only', modulesToSave: ['encoder.layer.0.dense'],
  });
  for (const k of set.baseCopyKeys()) set.params.get(k)!.forEach((v, i, a) => (a[i] = v + 0.05 * Math.cos(i)));
  const dir = tmp('hydra-copies');
  saveAdapter(dir, set, { baseModel: 'use' });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.bias, 'lora_only');
  assert.deepEqual(cfg.modules_to_save, ['encoder.layer.0.dense']);
  const loaded = loadPeftAdapter(model, dir, { warn: (m) => assert.fail(`unexpected warning: ${m}`) });
  assert.deepEqual(loaded.set.baseCopyKeys().sort(), set.baseCopyKeys().sort());
  const want = await embed(model, set);
  assert.ok(maxAbsDiff(want, await embed(model, new AdapterSet(method, set.config, model.sites, model.weights, { targetModules: ['qkv'], seed: 5 }))) > 1e-4, 'the trained copies matter');
  assert.equal(maxAbsDiff(await embed(model, loaded.set), want), 0);
  const noDense = edited(dir, { tensors: (t) => t.delete(`${PEFT_PREFIX}encoder.layer.0.dense.weight`) });
  assert.throws(() => loadPeftAdapter(model, noDense, { warn: () => {} }), /missing 'base_model\.model\.encoder\.layer\.0\.dense\.weight'/);
});

/** Copies an adapter folder, changing its config and/or tensors. */
function edited(dir: string, edit: { config?: (c: any) => void; tensors?: (t: Map<string, { shape: number[]; data: Float32Array }>) => void }): string {
  const out = tmp('edited');
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
  edit.config?.(cfg);
  fs.writeFileSync(path.join(out, 'adapter_config.json'), JSON.stringify(cfg));
  const t = new Map([...readSafetensors(path.join(dir, 'adapter_model.safetensors')).tensors].map(([k, v]) => [k, { shape: v.shape, data: v.data as Float32Array }]));
  edit.tensors?.(t);
  writeSafetensors(path.join(out, 'adapter_model.safetensors'), Object.fromEntries([...t].map(([k, v]) => [k, { dtype: 'F32' as const, ...v }])), { format: 'pt' });
  return out;
}

test('loading fails naming the module: config targets a module the model lacks, tensors of a missing module, shapes that do not fit', () => {
  const set = trained('vera', { r: 16 });
  const dir = tmp('vera-bad');
  saveAdapter(dir, set, { baseModel: 'use' });
  const qkv = set.targets[0].name; // encoder.layer.0.attention.qkv
  const m = set.targets[0].outFeatures;

  const noModule = edited(dir, { config: (c) => (c.target_modules = ['qkv', 'q_proj']) });
  assert.throws(() => loadPeftAdapter(model, noModule), (e: Error) => e instanceof TargetError && /q_proj/.test(e.message));

  const foreign = edited(dir, { tensors: (t) => t.set(`${PEFT_PREFIX}encoder.layer.7.attention.qkv.vera_lambda_b`, { shape: [m], data: new Float32Array(m) }) });
  assert.throws(() => loadPeftAdapter(model, foreign), (e: Error) => e instanceof AdapterLoadError && /'encoder\.layer\.7\.attention\.qkv', which this model does not have/.test(e.message));

  const wide = edited(dir, { tensors: (t) => t.set(`${PEFT_PREFIX}${qkv}.vera_lambda_b`, { shape: [m + 4], data: new Float32Array(m + 4) }) });
  assert.throws(() => loadPeftAdapter(model, wide), (e: Error) =>
    e instanceof AdapterLoadError && e.message.includes(`Module '${qkv}'`) && e.message.includes(`[${m + 4}]`) && e.message.includes(`[${m}]`) && /vera_lambda_b/.test(e.message));

  const missing = edited(dir, { tensors: (t) => t.delete(`${PEFT_PREFIX}${qkv}.vera_lambda_d`) });
  assert.throws(() => loadPeftAdapter(model, missing), (e: Error) => e.message.includes(qkv) && /missing/.test(e.message));

  const wrongR = edited(dir, { config: (c) => (c.r = 8) });
  assert.throws(() => loadPeftAdapter(model, wrongR), (e: Error) => e.message.includes(qkv) && /\[16\]/.test(e.message) && /\[8\]/.test(e.message));

  const unknownType = edited(dir, { config: (c) => { c.peft_type = 'IA3'; delete c.lorakit; } });
  assert.throws(() => loadPeftAdapter(model, unknownType), /IA3/);
});
