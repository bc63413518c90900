// The page's training run (src/demo/train_run.ts), run in Node, is
// `lorakit train --data <file>`: the same split, defaults and loop give the
// same adapter file byte for byte and the same frozen-encoder baseline. The
// browser test then only has to compare the page with Node.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { labeledSetFromJsonl } from '../src/demo/labeled_input.ts';
import { DEFAULT_SETTINGS, trainRun } from '../src/demo/train_run.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { CONFIG_FILE, LORAKIT_CONFIG_FILE, WEIGHTS_FILE } from '../src/peft/adapter_files.ts';

const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const DATA = new URL('./fixtures/demo/reviews.jsonl', import.meta.url).pathname;

test("the page's run equals `lorakit train` on the same file: adapter bytes, config, baseline", async () => {
  process.env.LORAKIT_THREADS = '1'; // the CLI below runs with 1 thread too: identical float sums
  const set = labeledSetFromJsonl(fs.readFileSync(DATA, 'utf8'), path.basename(DATA));
  const run = await trainRun(await loadUseEncoder(), UseTokenizer.fromVocabFile(), set, { ...DEFAULT_SETTINGS, batchSize: 8, seed: 7, epochs: 2, lr: 1e-2 });
  const files = run.files();

  // The command the page shows for the run, run where the data file is.
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-demo-run-'));
  assert.deepEqual(run.command.slice(0, 3), ['train', '--data', 'reviews.jsonl']);
  const cli = spawnSync(process.execPath, [BIN, ...run.command, '--out', out, '--quiet'], { cwd: path.dirname(DATA), encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '1' } });
  assert.equal(cli.status, 0, cli.stderr + cli.stdout);
  const dir = path.join(out, 'adapter');
  assert.ok(Buffer.from(files.get(WEIGHTS_FILE)!).equals(fs.readFileSync(path.join(dir, WEIGHTS_FILE))), 'adapter_model.safetensors differs from the CLI');
  assert.deepEqual(JSON.parse(new TextDecoder().decode(files.get(CONFIG_FILE))), JSON.parse(fs.readFileSync(path.join(dir, CONFIG_FILE), 'utf8')));
  // lorakit's block too (labels, max_length, data file, split seed, method, seed).
  const side = JSON.parse(new TextDecoder().decode(files.get(LORAKIT_CONFIG_FILE)));
  const cliSide = JSON.parse(fs.readFileSync(path.join(dir, LORAKIT_CONFIG_FILE), 'utf8'));
  assert.deepEqual(side, cliSide);

  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.deepEqual(results.split, { train: run.data.train, validation: run.data.validation, test: run.data.test });
  assert.equal(run.probeTestAccuracy, results.rows[0].testAccuracy);
  assert.equal(run.testAccuracy, results.rows[1].testAccuracy);
  assert.ok(run.steps.length >= 8 && run.steps.at(-1)!.loss < 0.5 * run.steps[0].loss, `loss ${run.steps[0].loss} → ${run.steps.at(-1)!.loss}`);
});
