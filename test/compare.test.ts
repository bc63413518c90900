// lorakit compare (src/tasks/compare.ts): statistics, the Markdown table, the
// SVG chart, and a tiny end-to-end run (2 methods × 2 seeds, a few examples).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runClassificationJob } from '../src/tasks/classification.ts';
import { BASELINE, compareMarkdown, compareSvg, CompareRow, mean, median, parseSystem, runCompare, std } from '../src/tasks/compare.ts';

const row = (method: string, accs: number[], params: number, step: number | null): CompareRow => ({
  method, seeds: accs.length, meanAccuracy: mean(accs), stdAccuracy: std(accs), accuracies: accs, trainableParams: params, medianStepMs: step, peakRssMiB: 900,
});

test('statistics: sample std, median', () => {
  assert.ok(Math.abs(mean([0.8, 0.9]) - 0.85) < 1e-12);
  assert.ok(Math.abs(std([0.8, 0.9, 1.0]) - 0.1) < 1e-12);
  assert.equal(std([0.7]), 0);
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
});

test('Markdown table and SVG chart', () => {
  const rows = [row(BASELINE, [0.7, 0.72], 1026, null), { ...row('lora', [0.8, 0.84], 105474, 812.3), deltaVsBaseline: 0.11, lr: 0.002, config: { r: 8 }, optimizerStateBytes: 2 * 4 * 104448 }];
  const md = compareMarkdown(rows, { methods: ['lora'], seeds: 2, firstSeed: 42, model: 'use', data: 'imdb', targetModules: ['qkv'], epochs: 1, lr: 2e-3, headLrScale: 5, batchSize: 32, maxLen: 128, out: 'x', split: { train: 10, validation: 5, test: 5 } });
  assert.match(md, /\| lora \| 82\.00 ± 2\.83 \| 80\.00, 84\.00 \| \+11\.00 \| 105,474 \| 816 \| 812\.3 \| 900 \| lr 0\.002, r 8 \|/);
  assert.match(md, /\| frozen encoder \| 71\.00 ± 1\.41 \| .* \| — \|/);
  assert.match(md, /seeds 42, 43/);
  const svg = compareSvg(rows);
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.equal((svg.match(/<rect /g) ?? []).length, 3, 'background + one bar per row');
  assert.match(svg, />lora</);
  assert.match(svg, /<\/svg>\n$/);
});

test('runCompare: every method × seed plus one baseline per seed', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-compare-'));
  const ui = { info() {}, startPhase() {}, step() {}, eval() {}, endPhase() {} };
  const res = await runCompare(
    { methods: ['lora', 'hydra'], seeds: 2, firstSeed: 7, model: 'use', data: 'imdb', targetModules: ['qkv'], epochs: 1, lr: 2e-3, headLrScale: 5, batchSize: 4, maxTrain: 12, maxEval: 8, maxLen: 32, threads: 2, out },
    ui,
  );
  assert.deepEqual(res.runs.map((r) => `${r.method}@${r.seed}`), ['frozen encoder@7', 'lora@7', 'hydra@7', 'frozen encoder@8', 'lora@8', 'hydra@8']);
  assert.deepEqual(res.rows.map((r) => r.method), [BASELINE, 'lora', 'hydra']);
  for (const r of res.rows) {
    assert.equal(r.seeds, 2);
    assert.ok(r.meanAccuracy >= 0 && r.meanAccuracy <= 1);
    assert.ok(r.peakRssMiB > 0);
  }
  assert.equal(res.rows[0].medianStepMs, null);
  // The paired difference is the mean over seeds of (method − that seed's baseline).
  const acc = (m: string, seed: number) => res.runs.find((r) => r.method === m && r.seed === seed)!.testAccuracy;
  assert.ok(Math.abs(res.rows[1].deltaVsBaseline! - (acc('lora', 7) - acc(BASELINE, 7) + acc('lora', 8) - acc(BASELINE, 8)) / 2) < 1e-12);
  assert.ok(res.rows[1].medianStepMs! > 0);
  assert.equal(res.rows[1].trainableParams, 8 * (256 + 768) + 8 * (512 + 1536) + 2 * 512 + 2);
  assert.ok(fs.existsSync(path.join(out, 'compare.json')));
  await assert.rejects(runCompare({ ...({} as any), methods: ['nosuch'], seeds: 1 }, ui), /Unknown adapter method 'nosuch'/);
  // --reuse: the finished runs are taken over, only the new method trains.
  const seen: string[] = [];
  const again = await runCompare(
    { methods: ['lora', 'hydra'], seeds: 2, firstSeed: 7, model: 'use', data: 'imdb', targetModules: ['qkv'], epochs: 1, lr: 2e-3, headLrScale: 5, batchSize: 4, maxTrain: 12, maxEval: 8, maxLen: 32, threads: 2, out, reuse: true },
    { ...ui, info: (m: string) => seen.push(m) },
  );
  assert.deepEqual(again.rows.map((r) => r.meanAccuracy), res.rows.map((r) => r.meanAccuracy));
  assert.equal(seen.filter((m) => /reused/.test(m)).length, 4);
  // Retuning one method's learning rate reruns only that method (and the baseline it carries).
  const seen2: string[] = [];
  await runCompare(
    { methods: ['lora', 'hydra'], seeds: 2, firstSeed: 7, model: 'use', data: 'imdb', targetModules: ['qkv'], epochs: 1, lr: 2e-3, methodLr: { hydra: 1e-3 }, headLrScale: 5, batchSize: 4, maxTrain: 12, maxEval: 8, maxLen: 32, threads: 2, out, reuse: true },
    { ...ui, info: (m: string) => seen2.push(m) },
  );
  assert.deepEqual(seen2.filter((m) => /reused/.test(m)).map((m) => m.match(/== (\w+)/)![1]), ['lora', 'lora']);
  await assert.rejects(runCompare({ methods: ['lora'], seeds: 1, firstSeed: 7, model: 'use', data: 'imdb', targetModules: ['qkv'], epochs: 2, lr: 2e-3, headLrScale: 5, batchSize: 4, maxTrain: 12, maxEval: 8, maxLen: 32, out, reuse: true }, ui), /--reuse: .* epochs = 1, this run has 2/);
});

test('compare --eval-ranks: DyLoRA at every b ≤ r beside LoRA truncated to b; b = r equals the run\'s own test accuracy', async () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-compare-ranks-'));
  const ui = { info() {}, startPhase() {}, step() {}, eval() {}, endPhase() {} };
  const res = await runCompare(
    { methods: ['dylora', 'lora'], seeds: 1, firstSeed: 7, model: 'use', data: 'imdb', targetModules: ['qkv'], epochs: 1, lr: 2e-3, headLrScale: 5, batchSize: 4, maxTrain: 12, maxEval: 8, maxLen: 32, threads: 2, out, evalRanks: true, methodConfigs: { dylora: { r: 4 }, lora: { r: 4, lora_alpha: 8 } } },
    ui,
  );
  assert.deepEqual(res.rankAccuracy!.map((a) => [a.method, a.ranks]), [['dylora', [1, 2, 3, 4]], ['lora', [1, 2, 3, 4]]]);
  for (const a of res.rankAccuracy!) assert.equal(a.mean[3], res.rows.find((r) => r.method === a.method)!.meanAccuracy, `${a.method} at b = r`);
  assert.match(res.markdown, /\| b \| dylora at b \| lora truncated to b \|/);
});

test('LP-FT: a probe-initialised head starts from the frozen-encoder baseline', async () => {
  // With a vanishing learning rate nothing moves, so the fine-tuned system must
  // score exactly what the linear probe scored (a fresh random head would not).
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-lpft-'));
  const ui = { info() {}, startPhase() {}, step() {}, eval() {}, endPhase() {} };
  const res = await runClassificationJob(
    { model: 'use', data: 'imdb', method: 'lora', methodConfig: {}, targetModules: ['qkv'], epochs: 1, lr: 1e-12, headLrScale: 1, batchSize: 8, seed: 3, out, maxTrain: 64, maxEval: 48, maxLen: 32, threads: 2, resume: false, baseline: true, headInit: 'probe' },
    ui,
  );
  const [probe, tuned] = res.rows;
  assert.ok(probe.testAccuracy > 0.6, `probe accuracy ${probe.testAccuracy}`);
  assert.equal(tuned.testAccuracy, probe.testAccuracy);
});

test('compared systems: a method, a method with another optimizer, full fine-tuning (with or without GaLore); nonsense is refused', async () => {
  assert.deepEqual(parseSystem('vera'), { method: 'vera', full: false, optimizer: 'adamw' });
  assert.deepEqual(parseSystem('lora@lorapro'), { method: 'lora', full: false, optimizer: 'lorapro' });
  assert.deepEqual(parseSystem('full@galore'), { method: 'lora', full: true, optimizer: 'galore' });
  assert.throws(() => parseSystem('full@allora'), /allora steps a LoRA; full fine-tuning takes adamw, sgd or galore/);
  assert.throws(() => parseSystem('lora@galore'), /compare it as 'full@galore'/);
  assert.throws(() => parseSystem('lora@adam'), /unknown optimizer 'adam'/);
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-compare-sys-'));
  const ui = { info() {}, startPhase() {}, step() {}, eval() {}, endPhase() {} };
  const res = await runCompare(
    { methods: ['lora', 'lora@allora', 'full'], seeds: 1, firstSeed: 7, model: 'use', data: 'imdb', targetModules: ['qkv'], epochs: 1, lr: 2e-3, methodLr: { full: 1e-5 }, headLrScale: 5, batchSize: 4, maxTrain: 8, maxEval: 8, maxLen: 32, threads: 2, out },
    ui,
  );
  const byName = new Map(res.rows.map((r) => [r.method, r]));
  assert.ok(byName.get('full')!.trainableParams > 100 * byName.get('lora')!.trainableParams, 'full fine-tuning trains every weight');
  assert.ok(byName.get('full')!.optimizerStateBytes! > byName.get('lora')!.optimizerStateBytes!, 'and keeps moments for all of them');
  assert.deepEqual(byName.get('lora@allora')!.config, { r: 8, lora_alpha: 8, lora_dropout: 0 });
  assert.ok(fs.existsSync(path.join(out, 'full-seed7', 'model', 'model.safetensors')));
});
