// `lorakit train --task grpo` as a user runs it (the bin, separate processes):
// a reward module on the tiny Llama, killed with SIGKILL after checkpoint 3
// and resumed: the same adapter bytes as the uninterrupted run (sampling is
// seeded from the run's seed and the step); the mean reward per epoch is
// reported; clear refusals (no validation, --full, a prompt too long).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { killAtCheckpoint } from './helpers/crash_trials.ts';

const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const ENV = { ...process.env, LORAKIT_THREADS: '1' };
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });

test('train --task grpo with a reward module: kill -9 and --resume give the same adapter bytes; mean reward reported', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-grpo-cli-'));
  const reward = path.join(dir, 'reward.mjs');
  // Rewards completions that contain the record's letter.
  fs.writeFileSync(reward, 'export default (completion, record) => (completion.includes(record.letter) ? 1 : 0);\n');
  const data = path.join(dir, 'prompts.jsonl');
  fs.writeFileSync(data, ['once upon a time', 'the cat sat', 'red apples', 'a dark night', 'we sing', 'hello world'].map((p, i) => JSON.stringify({ prompt: p, letter: 'aeiou'[i % 5] })).join('\n') + '\n');
  const base = ['train', '--task', 'grpo', '--model', FIX + 'llama-tiny', '--reward', reward, '--data', data, '--num-generations', '3', '--max-new-tokens', '4', '--batch', '1', '--epochs', '1', '--lr', '0.01', '--seed', '7', '--checkpoint-every', '1', '--quiet'];
  const full = run(...base, '--out', path.join(dir, 'full'));
  assert.equal(full.status, 0, full.stderr);
  assert.match(full.stdout, /GRPO: mean reward per epoch \d\.\d{3}/);
  const out = path.join(dir, 'resumed');
  const killed = await killAtCheckpoint([...base, '--out', out], path.join(out, 'checkpoints'), 3);
  assert.equal(killed.signal, 'SIGKILL');
  const resumed = run(...base, '--out', out, '--resume');
  assert.equal(resumed.status, 0, resumed.stderr);
  const bytes = (d: string) => fs.readFileSync(path.join(d, 'adapter', 'adapter_model.safetensors'));
  assert.ok(bytes(out).equals(bytes(path.join(dir, 'full'))), 'the resumed run writes the same adapter bytes');
  const steps = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').split('\n').filter((l) => l.includes('"event":"step"')).map((l) => JSON.parse(l));
  assert.ok(steps.every((s) => typeof s.task.reward === 'number' && typeof s.task.kl === 'number'));
  const results = JSON.parse(fs.readFileSync(path.join(dir, 'full', 'results.json'), 'utf8'));
  assert.equal(results.task, 'grpo');
  assert.equal(results.meanRewardPerEpoch.length, 1);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('train --task grpo refuses validation data, --full, and a Rank-R1 prompt the model cannot hold', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-grpo-cli-'));
  const data = path.join(dir, 'r1.jsonl');
  fs.writeFileSync(data, JSON.stringify({ query: 'cats', documents: ['a cat', 'a dog'], labels: [1, 0] }) + '\n');
  const base = ['train', '--task', 'grpo', '--model', FIX + 'qwen2-tiny', '--data', data, '--quiet', '--out', path.join(dir, 'o')];
  const v = run(...base, '--validation', data);
  assert.notEqual(v.status, 0);
  assert.match(v.stderr, /no validation pass/);
  const f = run(...base, '--full');
  assert.match(f.stderr, /reference policy is the model with the adapter disabled/);
  const long = run(...base);
  assert.match(long.stderr, /prompt 1 has \d+ tokens; with --max-new-tokens 128 the model's 64 positions/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('train --task grpo --reward rank-r1 and grouprank on a decoder whose positions hold the prompts: runs, logs rewards (0: the untrained model never answers in format)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-grpo-cli-'));
  const model = path.join(dir, 'model');
  fs.mkdirSync(model);
  for (const f of fs.readdirSync(FIX + 'llama-tiny')) fs.copyFileSync(path.join(FIX, 'llama-tiny', f), path.join(model, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(model, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(model, 'config.json'), JSON.stringify({ ...cfg, max_position_embeddings: 2048 }));
  const data = path.join(dir, 'r.jsonl');
  fs.writeFileSync(data, [{ query: 'cats', documents: ['a cat', 'a dog'], labels: [1, 0] }, { query: 'dogs', documents: ['a cat', 'a dog'], labels: [0, 1] }].map((r) => JSON.stringify(r)).join('\n') + '\n');
  for (const reward of ['rank-r1', 'grouprank']) {
    const out = path.join(dir, reward);
    const r = run('train', '--task', 'grpo', '--model', model, '--reward', reward, '--data', data, '--num-generations', '2', '--max-new-tokens', '4', '--batch', '2', '--epochs', '1', '--quiet', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /GRPO: mean reward per epoch 0\.000/);
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.equal(results.steps, 1);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
