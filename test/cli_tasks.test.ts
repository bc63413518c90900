// `lorakit train --task …` as a user runs it (the bin, separate processes):
// causal LM with several methods, killed with SIGKILL mid-run and resumed,
// ends with the same adapter file as an uninterrupted run and generates with
// it; seq2seq on the T5 and BART fixtures; rerank and embed on the bundled
// encoder; every task writes the same output layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readAdapter } from '../src/peft/adapter_files.ts';
import { killAtCheckpoint } from './helpers/crash_trials.ts';
import { STORY } from './helpers/story.ts';

const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const ENV = { ...process.env, LORAKIT_THREADS: '1' };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-cli-tasks-'));
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });

function jsonl(dir: string, name: string, rows: object[]): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  return f;
}


/** The output layout every task writes. */
function assertLayout(out: string, task: string, method: string) {
  for (const f of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'metrics.jsonl', 'results.json']) assert.ok(fs.existsSync(path.join(out, f)), `${task}: ${f} missing`);
  assert.ok(fs.readdirSync(path.join(out, 'checkpoints')).some((d) => d.startsWith('checkpoint-')), `${task}: no checkpoint`);
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.equal(results.task, task);
  assert.equal(results.method, method);
  // adapter_config.json + lorakit's block (lorakit_config.json beside it for PEFT's own types), as readAdapter reads them.
  const cfg = readAdapter(path.join(out, 'adapter')).config;
  assert.equal(cfg.lorakit.method, method);
  assert.equal(cfg.lorakit.task, task);
}

for (const method of ['vera', 'smora', 'fourierft', 'dora']) {
  test(`causal-lm --method ${method}: checkpoints, resumes after kill -9 to the same adapter file, generates with it`, async () => {
    const dir = tmp();
    const data = jsonl(dir, 'story.jsonl', STORY);
    const base = ['train', '--task', 'causal-lm', '--model', FIX + 'llama-tiny', '--method', method, '--data', data, '--epochs', '8', '--batch', '2', '--lr', '0.01', '--seed', '3', '--checkpoint-every', '1', '--quiet'];
    const full = run(...base, '--out', path.join(dir, 'full'));
    assert.equal(full.status, 0, full.stderr);
    assertLayout(path.join(dir, 'full'), 'causal-lm', method);

    const out = path.join(dir, 'crashed');
    const killed = await killAtCheckpoint([...base, '--out', out], path.join(out, 'checkpoints'), 5);
    assert.equal(killed.signal, 'SIGKILL', 'the run was killed before it finished');
    assert.ok(!fs.existsSync(path.join(out, 'adapter')), 'a killed run has no adapter yet');
    const resumed = run(...base, '--out', out, '--resume');
    assert.equal(resumed.status, 0, resumed.stderr);
    const file = (d: string) => fs.readFileSync(path.join(d, 'adapter', 'adapter_model.safetensors'));
    assert.ok(file(out).equals(file(path.join(dir, 'full'))), 'the resumed run writes the same adapter bytes as the uninterrupted one');
    const log = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8');
    assert.match(log, /"event":"resume"/);

    const g = run('generate', '--model', FIX + 'llama-tiny', '--adapter', path.join(out, 'adapter'), '--prompt', 'once upon a time', '--max-new-tokens', '4');
    assert.equal(g.status, 0, g.stderr);
    assert.match(g.stderr, /\[\d+ tokens, (stop|length)/);
  });
}

for (const fixture of ['t5-tiny', 'bart-tiny']) {
  test(`seq2seq on ${fixture}: JSONL {"source","target"} trains (loss falls), writes the layout, generates with the adapter`, () => {
    const dir = tmp();
    const rows = ['red', 'green', 'blue', 'black', 'white', 'pink'].map((c) => ({ source: `what colour is ${c}?`, target: `it is ${c}` }));
    const data = jsonl(dir, 'pairs.jsonl', rows);
    const val = jsonl(dir, 'val.jsonl', rows.slice(0, 2));
    const out = path.join(dir, 'run');
    const r = run('train', '--task', 'seq2seq', '--model', FIX + fixture, '--data', data, '--validation', val, '--epochs', '6', '--batch', '3', '--lr', '0.01', '--quiet', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    assertLayout(out, 'seq2seq', 'lora');
    const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    assert.ok(res.epochLosses[5] < res.epochLosses[0], `training loss ${res.epochLosses.join(' → ')}`);
    assert.ok(Number.isFinite(res.validation.loss) && res.validation.perplexity > 1);
    assert.match(r.stdout, /validation: loss \d/);
    const g = run('generate', '--model', FIX + fixture, '--adapter', path.join(out, 'adapter'), '--prompt', 'what colour is red?', '--max-new-tokens', '5');
    assert.equal(g.status, 0, g.stderr);
  });
}

test('rerank and embed on the bundled encoder: the layout, a score head saved for rerank, metrics in results.json', () => {
  const dir = tmp();
  const docs = ['cats purr', 'stocks fell', 'dogs bark', 'rain falls'];
  const rr = jsonl(dir, 'rr.jsonl', docs.map((d, i) => ({ query: d.split(' ')[0], positive: d, negatives: docs.filter((_, j) => j !== i) })));
  const out = path.join(dir, 'rerank');
  const r = run('train', '--task', 'rerank', '--data', rr, '--validation', rr, '--epochs', '2', '--batch', '2', '--target-modules', 'qkv', '--quiet', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  assertLayout(out, 'rerank', 'lora');
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter/adapter_config.json'), 'utf8'));
  assert.deepEqual(cfg.modules_to_save, ['score']);
  assert.equal(cfg.task_type, 'SEQ_CLS');
  const res = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.ok(res.validation.mrr > 0 && res.validation.mrr <= 1);

  const em = jsonl(dir, 'em.jsonl', docs.map((d) => ({ anchor: d, positive: `${d} today` })));
  const out2 = path.join(dir, 'embed');
  const e = run('train', '--task', 'embed', '--data', em, '--epochs', '1', '--batch', '4', '--method', 'vera', '--quiet', '--out', out2);
  assert.equal(e.status, 0, e.stderr);
  assertLayout(out2, 'embed', 'vera');
  assert.equal(JSON.parse(fs.readFileSync(path.join(out2, 'adapter/adapter_config.json'), 'utf8')).task_type, 'FEATURE_EXTRACTION');

  const wrong = run('train', '--task', 'embed', '--model', FIX + 'llama-tiny', '--data', em, '--quiet', '--out', path.join(dir, 'x'));
  assert.equal(wrong.status, 1);
  assert.match(wrong.stderr, /--task embed trains an encoder .* is a decoder folder/);
  const bad = jsonl(dir, 'bad.jsonl', [{ query: 'q', documents: ['a', 'b'], labels: [0] }]);
  const b = run('train', '--task', 'rerank', '--data', bad, '--quiet', '--out', path.join(dir, 'y'));
  assert.equal(b.status, 1);
  assert.match(b.stderr, /bad\.jsonl:1: "labels" must be one number per document \(2\)\nA valid line looks like/);
});

test('fourierft and loca at their defaults (n_frequency 1000) on modules smaller than that: capped per module at out·in, recorded in n_frequency_pattern', () => {
  const dir = tmp();
  const data = jsonl(dir, 'story.jsonl', STORY);
  for (const method of ['fourierft', 'loca']) {
    const out = path.join(dir, method);
    const r = run('train', '--task', 'causal-lm', '--model', FIX + 'llama-tiny', '--method', method, '--data', data, '--epochs', '1', '--batch', '3', '--quiet', '--out', out);
    assert.equal(r.status, 0, r.stderr);
    const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter/adapter_config.json'), 'utf8'));
    assert.equal(cfg.n_frequency, 1000);
    // llama-tiny: k_proj / v_proj are [16, 32] (512 < 1000); q_proj [32, 32] has 1024 ≥ 1000 and keeps the default.
    assert.equal(cfg.n_frequency_pattern['model.layers.0.self_attn.k_proj'], 512, JSON.stringify(cfg.n_frequency_pattern));
    assert.equal(cfg.n_frequency_pattern['model.layers.0.self_attn.q_proj'], undefined);
    const g = run('generate', '--model', FIX + 'llama-tiny', '--adapter', path.join(out, 'adapter'), '--prompt', 'once upon a time', '--max-new-tokens', '2');
    assert.equal(g.status, 0, g.stderr);
  }
});
