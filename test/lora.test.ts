// LoRA on the bundled USE encoder: training lowers the loss and moves only
// adapter + head parameters, exact resume, clear errors. (Merge/unmerge
// equivalence and disabled == base run in the shared harness,
// test/adapter_suite.test.ts.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { TargetError } from '../src/adapters/targets.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { ClassificationTrainer, EncodedExample, NonFiniteLossError } from '../src/train/trainer.ts';
import { HEAD_W } from '../src/train/classifier.ts';
import { saveAdapter, readAdapter, loadAdapterWeights } from '../src/peft/adapter_files.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

let model: EncoderModel;
let data: EncodedExample[];
const TARGETS = ['qkv', 'output', 'conv1', 'conv2'];

before(async () => {
  model = await loadUseEncoder();
  const tok = UseTokenizer.fromVocabFile();
  const texts = [
    'A wonderful, moving film with brilliant acting.', 'Terrible plot and wooden dialogue; I walked out.',
    'One of the best movies of the decade.', 'Boring, predictable and far too long.',
    'The soundtrack alone is worth the ticket.', 'I want my two hours back.',
    'Charming from start to finish, a real gem that I will watch again with my family.', 'Awful.',
    'Not great, not terrible.', 'An instant classic with a clever script.', 'The worst sequel ever made.', 'Loved it!',
  ];
  data = texts.map((t, i) => ({ ids: tok.encode(t), label: i % 2 === 0 ? 1 : 0 }));
});

const cfg = (over: Record<string, unknown> = {}) => lora.schema.parse({ r: 4, lora_alpha: 8, init_lora_weights: false, ...over });

test('merge refuses NaN in ΔW', () => {
  const set = new AdapterSet(lora, cfg(), model.sites, model.weights, { targetModules: ['qkv'], seed: 3 });
  [...set.params.values()][0][0] = NaN;
  assert.throws(() => set.mergeInto(model.weights), /NaN/);
});

test('training changes only adapter and head parameters, and lowers the loss', async () => {
  const before = new Map([...model.weights].map(([k, v]) => [k, Float32Array.from(v.data)]));
  const set = new AdapterSet(lora, cfg({ init_lora_weights: true }), model.sites, model.weights, { targetModules: TARGETS, seed: 3 });
  const init = new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)]));
  const losses: number[] = [];
  const t = new ClassificationTrainer(model, set, 2, { epochs: 8, lr: 5e-3, headLrScale: 5, batchSize: 12, seed: 5, warmupRatio: 0, onStep: (s) => losses.push(s.loss) });
  const headBefore = Float32Array.from(t.head.get(HEAD_W)!);
  await t.fit(data, data);
  for (const [k, v] of model.weights) assert.deepEqual(v.data, before.get(k), `frozen weight ${k} changed`);
  for (const [k, v] of set.params) assert.ok(maxAbsDiff(v, init.get(k)!) > 0, `adapter parameter ${k} did not train`);
  assert.ok(maxAbsDiff(t.head.get(HEAD_W)!, headBefore) > 0, 'head did not train');
  assert.ok(losses[losses.length - 1] < losses[0], `loss did not fall: ${losses.join(', ')}`);
  await t.release();
});

test('resume from a checkpoint gives exactly the uninterrupted result', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-resume-'));
  const opts = { epochs: 2, lr: 3e-3, batchSize: 4, seed: 9, checkpointEvery: 1, buckets: [16, 32] };
  const mk = () => new AdapterSet(lora, cfg({ init_lora_weights: true, lora_dropout: 0.1 }), model.sites, model.weights, { targetModules: ['qkv', 'conv1'], seed: 4 });
  const full = mk();
  const t1 = new ClassificationTrainer(model, full, 2, opts);
  await t1.fit(data, data);
  const partial = mk();
  const t2 = new ClassificationTrainer(model, partial, 2, { ...opts, outDir: dir, stopAfterSteps: 4 });
  assert.equal((await t2.fit(data, data)).stopped, true);
  const resumed = mk();
  const t3 = new ClassificationTrainer(model, resumed, 2, { ...opts, outDir: dir, resume: true });
  await t3.fit(data, data);
  for (const [k, v] of full.params) assert.deepEqual(resumed.params.get(k), v, `param ${k} differs after resume`);
  assert.deepEqual(t3.head.get(HEAD_W), t1.head.get(HEAD_W));
  for (const t of [t1, t2, t3]) await t.release();
});

test('a fresh run into a used folder replaces its checkpoints: a later resume continues this run, not the old one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-fresh-'));
  const opts = { epochs: 2, lr: 3e-3, batchSize: 4, checkpointEvery: 1, buckets: [16, 32] };
  const mk = () => new AdapterSet(lora, cfg({ init_lora_weights: true }), model.sites, model.weights, { targetModules: ['qkv'], seed: 4 });
  const old = new ClassificationTrainer(model, mk(), 2, { ...opts, seed: 1, outDir: dir });
  await old.fit(data, data); // leaves checkpoints up to its last step
  const full = mk();
  const t1 = new ClassificationTrainer(model, full, 2, { ...opts, seed: 2 });
  await t1.fit(data, data);
  const t2 = new ClassificationTrainer(model, mk(), 2, { ...opts, seed: 2, outDir: dir, stopAfterSteps: 2 });
  await t2.fit(data, data);
  const lines = fs.readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.filter((l) => l.event === 'step').map((l) => l.step), [1, 2], 'metrics of the old run were kept');
  const resumed = mk();
  const t3 = new ClassificationTrainer(model, resumed, 2, { ...opts, seed: 2, outDir: dir, resume: true });
  await t3.fit(data, data);
  for (const [k, v] of full.params) assert.deepEqual(resumed.params.get(k), v, `param ${k}: resume did not continue the fresh run`);
  for (const t of [old, t1, t2, t3]) await t.release();
});

test('adapter folder round trip: PEFT key names, config fields, identical values', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-adapter-'));
  const set = new AdapterSet(lora, cfg(), model.sites, model.weights, { targetModules: ['qkv'], seed: 3 });
  saveAdapter(dir, set, { baseModel: 'use' });
  const loaded = readAdapter(dir);
  assert.equal(loaded.config.peft_type, 'LORA');
  assert.equal(loaded.config.r, 4);
  assert.ok(loaded.tensors.has('base_model.model.encoder.layer.0.attention.qkv.lora_A.weight'));
  assert.deepEqual(loaded.tensors.get('base_model.model.encoder.layer.1.attention.qkv.lora_B.weight')!.shape, [1536, 4]);
  const fresh = new AdapterSet(lora, cfg(), model.sites, model.weights, { targetModules: ['qkv'], seed: 99 });
  loadAdapterWeights(fresh, loaded);
  for (const [k, v] of set.params) assert.deepEqual(fresh.params.get(k), v);
  const wrongRank = new AdapterSet(lora, cfg({ r: 2 }), model.sites, model.weights, { targetModules: ['qkv'], seed: 1 });
  assert.throws(() => loadAdapterWeights(wrongRank, loaded), /shape \[4,256\] but the model needs \[2,256\]/);
});

test('a target module that matches nothing lists the modules that exist', () => {
  assert.throws(
    () => new AdapterSet(lora, cfg(), model.sites, model.weights, { targetModules: ['query', 'qkv'] }),
    (e: Error) => e instanceof TargetError && /\["query"\]/.test(e.message) && /encoder\.layer\.0\.attention\.qkv/.test(e.message),
  );
});

test('a NaN loss stops training with a clear message; a NaN learning rate is refused', async () => {
  const set = new AdapterSet(lora, cfg(), model.sites, model.weights, { targetModules: ['qkv'], seed: 3 });
  assert.throws(() => new ClassificationTrainer(model, set, 2, { epochs: 1, lr: NaN, batchSize: 4, seed: 1 }), /Learning rate must be a positive finite number, got NaN/);
  const t = new ClassificationTrainer(model, set, 2, { epochs: 1, lr: 1e-3, batchSize: 4, seed: 1 });
  t.head.get(HEAD_W)![0] = NaN;
  await assert.rejects(t.fit(data, data), (e: Error) => e instanceof NonFiniteLossError && /loss is NaN at step 0/.test(e.message) && /--lr/.test(e.message));
  await t.release();
});
