// A lorakit adapter trained further and saved by PEFT (save_pretrained writes
// adapter_config.json and the weights, not lorakit_config.json): lorakit still
// reads it, says which of its run metadata are missing and what it takes
// instead; with lorakit_config.json copied back (as a recipe's train.py does)
// the folder evaluates as the original. And the recipe's returned adapter
// keeps lorakit's block, saying which steps made it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runClassificationJob, runEvalJob } from '../src/tasks/classification.ts';
import { CONFIG_FILE, LORAKIT_CONFIG_FILE, readAdapter, WEIGHTS_FILE } from '../src/peft/adapter_files.ts';

const quiet = { info() {}, startPhase() {}, step() {}, eval() {}, endPhase() {} };

test("a folder PEFT re-saved (no lorakit_config.json): lorakit reads it and names what falls back; the block copied back restores the run's settings", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-resave-'));
  const out = path.join(dir, 'run');
  // max length 16 (lorakit's block) where a reader without the block takes 128.
  await runClassificationJob({ model: 'use', data: 'imdb', epochs: 1, lr: 5e-3, headLrScale: 5, batchSize: 8, maxTrain: 16, maxEval: 8, maxLen: 16, resume: false, baseline: false, method: 'lora', methodConfig: { r: 2 }, seed: 2, out }, quiet);
  const original = path.join(out, 'adapter');
  assert.equal(readAdapter(original).lorakitBlock, 'file');
  // What PEFT's save_pretrained leaves: its config and the weights.
  const resaved = path.join(dir, 'resaved');
  fs.mkdirSync(resaved);
  for (const f of [CONFIG_FILE, WEIGHTS_FILE]) fs.copyFileSync(path.join(original, f), path.join(resaved, f));
  assert.equal(readAdapter(resaved).lorakitBlock, 'none');

  const evalOf = async (adapter: string) => {
    const warnings: string[] = [];
    const r = await runEvalJob({ adapter, data: 'imdb', split: 'test', maxEval: 8, threads: 1, warn: (m) => warnings.push(m) });
    return { ...r, warnings };
  };
  const a = await evalOf(original);
  assert.deepEqual(a.warnings, []);
  const b = await evalOf(resaved);
  assert.equal(b.warnings.length, 1);
  assert.match(b.warnings[0], /no lorakit_config\.json beside adapter_config\.json \(PEFT's save_pretrained keeps only its own files\)/);
  assert.match(b.warnings[0], /max_length → 128 tokens/);
  assert.match(b.warnings[0], /Copy lorakit_config\.json from the folder the adapter came from/);
  assert.notEqual(b.loss, a.loss, 'without the block the texts are cut at 128 tokens, not 16');
  fs.copyFileSync(path.join(original, LORAKIT_CONFIG_FILE), path.join(resaved, LORAKIT_CONFIG_FILE));
  const c = await evalOf(resaved);
  assert.deepEqual(c.warnings, []);
  assert.deepEqual([c.accuracy, c.loss], [a.accuracy, a.loss]);
});
