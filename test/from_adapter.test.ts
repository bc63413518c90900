// `lorakit train --from-adapter A` on every task (mlm too, through the same
// code path; its masks are drawn per epoch and batch, so the comparison below does not
// apply to it): a run started from a saved
// adapter computes, at its first step, the loss the uninterrupted run computes
// at the step after the save (the loss of step k is taken before update k, so
// both are the loss of the same weights on the same data: one batch holds the
// whole training set, a constant learning rate makes the two runs' first
// updates the same). A weight, head or config field lost on the way through
// the folder would change it. Then the errors: a missing or corrupt folder, an
// adapter of another base model (module names, shapes), a flag that disagrees
// with the adapter's config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTrainJob, silentUi, type JobUi, type TrainJobOptions } from '../src/tasks/train.ts';
import { runClassificationJob, type ClassifyJobOptions } from '../src/tasks/classification.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';

const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-from-adapter-'));

function jsonl(dir: string, name: string, rows: object[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return f;
}

/** A UI that records each step's loss. */
function lossUi(): JobUi & { losses: number[] } {
  const losses: number[] = [];
  return { ...silentUi, losses, step: (s) => losses.push(s.loss) };
}

const STORY = [
  { prompt: 'once upon a time', completion: 'there lived a king' },
  { prompt: 'what is this', completion: 'a good movie' },
  { text: 'hello world, i love music' },
  { prompt: 'how are you', completion: 'fine, thanks' },
];
const DOCS = ['cats purr', 'stocks fell', 'dogs bark', 'rain falls'];

type Case = { task: TrainJobOptions['task']; model: string; rows: object[]; method?: string; methodConfig?: Record<string, unknown> };
const CASES: Case[] = [
  { task: 'causal-lm', model: FIX + 'llama-tiny', rows: STORY, methodConfig: { r: 4, lora_alpha: 8 } },
  { task: 'causal-lm', model: FIX + 'gpt2-tiny', rows: STORY, method: 'dora', methodConfig: { r: 2 } },
  { task: 'seq2seq', model: FIX + 't5-tiny', rows: ['red', 'green', 'blue'].map((c) => ({ source: `what colour is ${c}?`, target: `it is ${c}` })) },
  { task: 'rerank', model: FIX + 'bert', rows: DOCS.map((d, i) => ({ query: d.split(' ')[0], positive: d, negatives: DOCS.filter((_, j) => j !== i) })) },
  { task: 'embed', model: FIX + 'bert', rows: DOCS.map((d) => ({ anchor: d, positive: `${d} today` })), method: 'vera', methodConfig: { r: 8 } },
  { task: 'align', model: FIX + 'bert', rows: DOCS.map((d) => ({ source: d, target: `${d} today` })) },
];

for (const c of CASES) {
  test(`${c.task} (${path.basename(c.model)}, ${c.method ?? 'lora'}): the first step from a saved adapter has the loss the uninterrupted run has after the save`, async () => {
    const dir = tmp();
    const data = jsonl(dir, 'data.jsonl', c.rows);
    const base = {
      task: c.task, model: c.model, data, method: c.method ?? 'lora', methodConfig: c.methodConfig ?? {}, lr: 0.02, batchSize: 64, seed: 5,
      schedule: 'constant' as const, warmupRatio: 0, threads: 1, checkpointEvery: 0,
    };
    const uninterrupted = lossUi();
    await runTrainJob({ ...base, epochs: 2, out: path.join(dir, 'two') }, uninterrupted);
    await runTrainJob({ ...base, epochs: 1, out: path.join(dir, 'one') });
    const continued = lossUi();
    const r = await runTrainJob({ ...base, epochs: 1, out: path.join(dir, 'more'), method: 'lora', methodConfig: {}, fromAdapter: { dir: path.join(dir, 'one', 'adapter') } }, continued);
    assert.equal(r.method, c.method ?? 'lora');
    assert.equal(uninterrupted.losses.length, 2);
    assert.ok(Math.abs(uninterrupted.losses[1] - uninterrupted.losses[0]) > 1e-4, `the first update changed the loss: ${uninterrupted.losses}`);
    assert.ok(Math.abs(continued.losses[0] - uninterrupted.losses[1]) < 2e-5, `from the adapter ${continued.losses[0]}, uninterrupted ${uninterrupted.losses[1]}`);
    // The saved adapter keeps the loaded one's config and says where it came from.
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'more', 'adapter', 'adapter_config.json'), 'utf8'));
    const first = JSON.parse(fs.readFileSync(path.join(dir, 'one', 'adapter', 'adapter_config.json'), 'utf8'));
    for (const k of ['peft_type', 'r', 'lora_alpha', 'target_modules', 'use_dora', 'modules_to_save']) assert.deepEqual(cfg[k], first[k], k);
    const side = JSON.parse(fs.readFileSync(path.join(dir, 'more', 'adapter', 'lorakit_config.json'), 'utf8'));
    assert.equal(side.from_adapter, path.join(dir, 'one', 'adapter'));
  });
}

test('classification (bert): the head and the adapter continue from the folder', async () => {
  const dir = tmp();
  const rows = Array.from({ length: 40 }, (_, i) => ({ text: `${['good', 'bad'][i % 2]} film number ${i}`, label: i % 2 }));
  const data = jsonl(dir, 'cls.jsonl', rows);
  const base: Omit<ClassifyJobOptions, 'epochs' | 'out'> = {
    model: FIX + 'bert', data, method: 'lora', methodConfig: { r: 4 }, lr: 0.02, headLrScale: 5, batchSize: 256, seed: 5, maxLen: 16, resume: false,
    baseline: false, schedule: 'constant', warmupRatio: 0, threads: 1, checkpointEvery: 0, maxEval: 8,
  };
  const uninterrupted = lossUi(), continued = lossUi();
  await runClassificationJob({ ...base, epochs: 2, out: path.join(dir, 'two') }, uninterrupted);
  await runClassificationJob({ ...base, epochs: 1, out: path.join(dir, 'one') }, silentUi);
  await runClassificationJob({ ...base, epochs: 1, out: path.join(dir, 'more'), fromAdapter: { dir: path.join(dir, 'one', 'adapter') } }, continued);
  assert.ok(Math.abs(uninterrupted.losses[1] - uninterrupted.losses[0]) > 1e-4);
  assert.ok(Math.abs(continued.losses[0] - uninterrupted.losses[1]) < 2e-5, `from the adapter ${continued.losses[0]}, uninterrupted ${uninterrupted.losses[1]}`);
});

test('--from-adapter errors: missing or corrupt folder, another base model (modules, shapes), a conflicting flag', async () => {
  const dir = tmp();
  const data = jsonl(dir, 'story.jsonl', STORY);
  const job = (model: string, from: string) => runTrainJob({ task: 'causal-lm', model, data, method: 'lora', methodConfig: {}, epochs: 1, lr: 0.01, batchSize: 8, seed: 1, threads: 1, out: path.join(dir, 'x'), fromAdapter: { dir: from } });
  await assert.rejects(job(FIX + 'llama-tiny', path.join(dir, 'nope')), /nope.*adapter_config\.json.*not found/s);
  fs.mkdirSync(path.join(dir, 'corrupt'));
  fs.writeFileSync(path.join(dir, 'corrupt', 'adapter_config.json'), '{"peft_type": "LORA", ');
  await assert.rejects(job(FIX + 'llama-tiny', path.join(dir, 'corrupt')), /corrupt.*not valid JSON/s);
  const llama = path.join(dir, 'llama');
  await runTrainJob({ task: 'causal-lm', model: FIX + 'llama-tiny', data, method: 'lora', methodConfig: { r: 4 }, targetModules: ['q_proj', 'v_proj'], epochs: 1, lr: 0.01, batchSize: 8, seed: 1, threads: 1, out: llama });
  const adapter = path.join(llama, 'adapter');
  // A GPT-2 has no q_proj: the modules do not exist there.
  await assert.rejects(job(FIX + 'gpt2-tiny', adapter), /q_proj.*which this model does not have/s);
  // The same module names with other sizes: the adapter of a wider model.
  const wide = path.join(dir, 'wide');
  fs.mkdirSync(wide);
  fs.copyFileSync(path.join(adapter, 'adapter_config.json'), path.join(wide, 'adapter_config.json'));
  const st = readSafetensors(path.join(adapter, 'adapter_model.safetensors'));
  writeSafetensors(path.join(wide, 'adapter_model.safetensors'), Object.fromEntries([...st.tensors].map(([k, t]) => {
    const shape = k.includes('lora_A') ? [t.shape[0], 64] : [64, t.shape[1]];
    return [k, { dtype: 'F32' as const, shape, data: new Float32Array(shape[0] * shape[1]) }];
  })), { format: 'pt' });
  await assert.rejects(job(FIX + 'llama-tiny', wide), /has shape \[4,64\] but this model needs \[4,32\].*another base model/s);
  // A flag that disagrees with the adapter's config names both values; one that agrees is fine.
  const cli = (...extra: string[]) => spawnSync(process.execPath, [BIN, 'train', '--task', 'causal-lm', '--model', FIX + 'llama-tiny', '--data', data, '--epochs', '1', '--batch', '8', '--quiet', '--from-adapter', adapter, '--out', path.join(dir, 'cli'), ...extra], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '1' } });
  const bad = cli('--rank', '8', '--method', 'vera');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--method "vera" but the adapter has method = "lora"; --rank 8 but the adapter has r = 4/);
  const ok = cli('--rank', '4', '--target-modules', 'v_proj,q_proj');
  assert.equal(ok.status, 0, ok.stderr);
  const help = spawnSync(process.execPath, [BIN, 'train', '--help'], { encoding: 'utf8' });
  assert.match(help.stdout.replace(/\s+/g, ' '), /--from-adapter <dir>.*the optimizer starts fresh/);
});
