// The user-facing side of the rank-allocation methods: lorakit train saves a
// pruning method as the plain LoRA it becomes (loads as PEFT LoRA, same
// outputs as the method's own folder kept beside it), metrics.jsonl carries
// each module's rank per step and plot-ranks draws it, lorakit eval --rank b
// reads a DyLoRA adapter at any b ≤ r (and a LoRA truncated to b).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runClassificationJob, runEvalJob } from '../src/tasks/classification.ts';
import { rankSeries, rankSvg, readRankSeries } from '../src/tasks/plot_ranks.ts';
import { loadPeftAdapter, readAdapter } from '../src/peft/adapter_files.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { makeProgram } from '../src/cli/main.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const quiet = { info() {}, startPhase() {}, step() {}, eval() {}, endPhase() {} };
const tiny = { model: 'use', data: 'imdb', epochs: 1, lr: 5e-3, headLrScale: 5, batchSize: 8, maxTrain: 24, maxEval: 16, maxLen: 32, resume: false, baseline: false };
const tmp = (l: string) => fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-rankcli-${l}-`));

test('rankSeries: per-module ranks and DyLoRA\'s shared b from step records; a resumed step keeps the later value', () => {
  const recs = [
    { event: 'step', step: 1, adapter: { rank: { a: 4, b: 4 } } },
    { event: 'eval', step: 1 },
    { event: 'step', step: 2, adapter: { rank: { a: 3, b: 4 } } },
    { event: 'step', step: 2, adapter: { rank: { a: 2, b: 4 } } },
    { event: 'step', step: 3, adapter: { rank: { a: 2, b: 1 } } },
  ];
  assert.deepEqual(rankSeries(recs), [
    { module: 'a', steps: [1, 2, 3], ranks: [4, 2, 2] },
    { module: 'b', steps: [1, 2, 3], ranks: [4, 4, 1] },
  ]);
  assert.deepEqual(rankSeries([{ event: 'step', step: 1, adapter: { rank: 3 } }]), [{ module: 'all layers', steps: [1], ranks: [3] }]);
  const svg = rankSvg(rankSeries(recs), 'x');
  assert.equal(svg.match(/<polyline/g)?.length, 2);
  assert.match(svg, /a \(2\)/);
});

test('lorakit train --method sora saves adapter/ as PEFT LoRA (rank_pattern) with the gated folder in adapter_native/: same outputs; ranks per step in metrics.jsonl; plot-ranks draws them', async () => {
  const out = tmp('sora');
  const res = await runClassificationJob({ ...tiny, method: 'sora', methodConfig: { r: 4, sparse_lambda_2: 0.05 }, seed: 3, out }, quiet);
  assert.equal(res.saved!.saveAs, 'lora');
  const lora = readAdapter(path.join(out, 'adapter')), native = readAdapter(path.join(out, 'adapter_native'));
  assert.equal(lora.config.peft_type, 'LORA');
  assert.equal(native.config.peft_type, 'SORA');
  assert.deepEqual(Object.values(lora.config.rank_pattern).sort(), Object.values(res.saved!.ranks!).filter((r) => r > 0).sort());
  const model = await loadUseEncoder();
  const head = new Set(['classifier.weight', 'classifier.bias']);
  const m = { sites: model.sites, weights: new Map([...model.weights].filter(([k]) => !head.has(k))) };
  const [a, b] = [loadPeftAdapter(m, path.join(out, 'adapter'), { warn: () => {} }).set, loadPeftAdapter(m, path.join(out, 'adapter_native'), { warn: () => {} }).set];
  assert.equal(a.method.name, 'lora');
  assert.equal(b.method.name, 'sora');
  const tok = UseTokenizer.fromVocabFile();
  const batch = padBatch(['A wonderful, moving film.', 'Dull.'].map((t) => tok.encode(t)));
  const outs: Float32Array[] = [];
  for (const s of [a, b]) {
    const pm = new PeftModel(model, { threads: 1 });
    pm.addAdapter('x', s);
    outs.push((await pm.run(batch)).data as Float32Array);
    await pm.release();
  }
  assert.ok(maxAbsDiff(outs[0], outs[1]) < 1e-5, `LoRA form vs gated: ${maxAbsDiff(outs[0], outs[1])}`);
  const series = readRankSeries(out);
  assert.equal(series.length, 8, 'a rank line per adapted module');
  assert.ok(series.every((s) => s.steps.length === 3 && s.ranks.every((r) => r >= 0 && r <= 4)));
  assert.ok(series.some((s) => s.ranks.at(-1)! < 4), `ξ 0.05 closes some gates: ${series.map((s) => s.ranks.at(-1)).join(',')}`);
  await makeProgram().parseAsync(['node', 'lorakit', 'plot-ranks', out]);
  assert.match(fs.readFileSync(path.join(out, 'ranks.svg'), 'utf8'), /<polyline/);
});

test('lorakit eval --rank b: a DyLoRA adapter at every b ≤ r without retraining (b = r is the adapter itself), a LoRA truncated to b; other methods and b > r refused', async () => {
  const out = tmp('dylora');
  await runClassificationJob({ ...tiny, method: 'dylora', methodConfig: { r: 4 }, seed: 4, out }, quiet);
  assert.equal(readAdapter(path.join(out, 'adapter')).config.peft_type, 'DYLORA');
  const full = await runEvalJob({ adapter: path.join(out, 'adapter'), data: 'imdb', split: 'test', maxEval: 16 });
  const at = [];
  for (let b = 1; b <= 4; b++) at.push(await runEvalJob({ adapter: path.join(out, 'adapter'), data: 'imdb', split: 'test', maxEval: 16, rank: b }));
  assert.equal(at[3].loss, full.loss, 'b = r is the adapter as trained');
  assert.ok(new Set(at.map((r) => r.loss.toFixed(6))).size > 1, 'the ranks give different models');
  await assert.rejects(runEvalJob({ adapter: path.join(out, 'adapter'), data: 'imdb', split: 'test', maxEval: 16, rank: 5 }), /\[1, 4\]/);
  const lo = tmp('lora');
  await runClassificationJob({ ...tiny, method: 'lora', methodConfig: { r: 4, lora_alpha: 8 }, seed: 4, out: lo }, quiet);
  const l4 = await runEvalJob({ adapter: path.join(lo, 'adapter'), data: 'imdb', split: 'test', maxEval: 16, rank: 4 });
  const lfull = await runEvalJob({ adapter: path.join(lo, 'adapter'), data: 'imdb', split: 'test', maxEval: 16 });
  assert.equal(l4.loss, lfull.loss);
  const l1 = await runEvalJob({ adapter: path.join(lo, 'adapter'), data: 'imdb', split: 'test', maxEval: 16, rank: 1 });
  assert.notEqual(l1.loss, lfull.loss);
  const so = tmp('sora2');
  await runClassificationJob({ ...tiny, method: 'sora', methodConfig: { r: 2 }, seed: 4, out: so, saveAs: 'native' }, quiet);
  await assert.rejects(runEvalJob({ adapter: path.join(so, 'adapter'), data: 'imdb', split: 'test', maxEval: 16, rank: 1 }), /sora adapter; a rank can be chosen for dylora/);
});

test('lorakit train --task causal-lm --method adalora (bin, llama-tiny): adapter/ is the PEFT LoRA it became, adapter_native/ PEFT\'s ADALORA, generate runs with the LoRA form', async () => {
  const { spawnSync } = await import('node:child_process');
  const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const FIX = new URL('./fixtures/hf/llama-tiny', import.meta.url).pathname;
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '1' } });
  const dir = tmp('causal');
  const data = path.join(dir, 'story.jsonl');
  fs.writeFileSync(data, ['once upon a time|there lived a king', 'what is this|a good movie', 'who was there|the queen and the king', 'where is it|far away'].map((l) => JSON.stringify({ prompt: l.split('|')[0], completion: l.split('|')[1] })).join('\n') + '\n');
  const out = path.join(dir, 'run');
  const r = run('train', '--task', 'causal-lm', '--model', FIX, '--method', 'adalora', '--method-option', 'init_r=4', '--method-option', 'target_r=2', '--data', data, '--epochs', '3', '--batch', '2', '--lr', '0.01', '--quiet', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const lora = readAdapter(path.join(out, 'adapter')), native = readAdapter(path.join(out, 'adapter_native'));
  assert.equal(lora.config.peft_type, 'LORA');
  assert.equal(native.config.peft_type, 'ADALORA');
  assert.equal(native.config.total_step, 6, 'the run\'s steps are recorded for PEFT');
  assert.ok(native.config.rank_pattern && Object.values(native.config.rank_pattern as Record<string, boolean[]>).every((k) => k.length === 4));
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.equal(results.saved.saveAs, 'lora');
  assert.ok(Object.values(results.saved.ranks as Record<string, number>).some((x) => x < 4), 'the budget fell from init_r');
  const g = run('generate', '--model', FIX, '--adapter', path.join(out, 'adapter'), '--prompt', 'once upon a time', '--max-new-tokens', '3');
  assert.equal(g.status, 0, g.stderr);
});
