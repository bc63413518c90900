// The LoRA-limits norm monitor (src/train/norm_monitor.ts) against a direct
// computation in PyTorch (tools/reference/norm_monitor.py →
// test/fixtures/norm_monitor.json): on llama-tiny with a LoRA on q_proj and
// k_proj, the Γ the training loop logs for each layer's q, k and v equals
// max |X·(W + s·B·A)ᵀ| over the batch's real tokens, X being the layer's input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import { fit } from '../src/train/loop.ts';
import { dropRecordsAfterStep, readMetrics } from '../src/train/metrics.ts';
import { attentionProjections, type NormRecord } from '../src/train/norm_monitor.ts';
import { normsSvg } from '../src/train/norm_plot.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';
import type { LinearSite } from '../src/models/types.ts';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/norm_monitor.json', import.meta.url), 'utf8'));
const LLAMA = new URL('./fixtures/hf/llama-tiny', import.meta.url).pathname;

async function monitoredRun(outDir?: string, every = 1, epochs = 1) {
  const model = await loadDecoder(LLAMA);
  const adapters = new AdapterSet(lora, lora.schema.parse({ r: FIX.lora.r, lora_alpha: FIX.lora.lora_alpha }), model.sites, model.weights, { targetModules: FIX.lora.target_modules, seed: 0 });
  for (const [k, t] of Object.entries(FIX.lora.params as Record<string, { data: number[] }>)) {
    const p = adapters.params.get(k);
    assert.ok(p, `the adapter has ${k}`);
    p.set(t.data);
  }
  assert.equal(adapters.params.size, Object.keys(FIX.lora.params).length);
  const mask: number[][] = FIX.attention_mask;
  const examples = (FIX.input_ids as number[][]).map((row, b) => ({ ids: row.filter((_, t) => mask[b][t] > 0) }));
  const task = new CausalLmTask(model, { padId: 0 });
  const seen: ({ step: number } & NormRecord)[] = [];
  const res = await fit(task, adapters, { train: examples }, { epochs, lr: 1e-3, batchSize: 2, seed: 0, outDir, monitorNorms: { every }, onNorms: (r) => seen.push(r) });
  return { seen, res };
}

test('norm monitor: the logged Γ of q, k, v per layer equals max |X·(W + s·B·A)ᵀ| over the real tokens (PyTorch, float64) to 1e-6', async () => {
  const { seen } = await monitoredRun();
  const first = seen[0];
  assert.equal(first.step, 1);
  assert.equal(first.L, FIX.L);
  assert.ok(Math.abs(first.bound - FIX.bound) < 1e-12);
  assert.deepEqual(first.layers.map((l) => l.layer), FIX.layers.map((l: any) => l.layer));
  for (const [i, want] of (FIX.layers as { layer: string; q: number; k: number; v: number }[]).entries()) {
    const got = first.layers[i];
    for (const part of ['q', 'k', 'v'] as const) {
      const rel = Math.abs(got[part]! - want[part]) / want[part];
      assert.ok(rel < 1e-6, `${want.layer}.${part}: ${got[part]} vs ${want[part]} (relative ${rel})`);
    }
    assert.equal(got.gamma, Math.max(got.q!, got.k!, got.v!));
    assert.ok(Math.abs(got.ratio - got.gamma / FIX.bound) < 1e-12);
  }
});

test('norm monitor: every k steps (and step 1) in metrics.jsonl; the run peak is the largest ratio of any step; the plot has a line per layer and the √(ln L) threshold', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-norms-'));
  try {
    const { seen, res } = await monitoredRun(dir, 2, 5);
    const logged = readMetrics(path.join(dir, 'metrics.jsonl')).filter((r) => r.event === 'norms');
    assert.deepEqual(logged.map((r) => r.step), [1, 2, 4]);
    assert.deepEqual(seen.map((r) => r.step), [1, 2, 4]);
    assert.ok(res.normsPeak);
    for (const r of seen) for (const l of r.layers) assert.ok(l.ratio <= res.normsPeak!.ratio + 1e-12);
    const svg = normsSvg(logged as any);
    assert.match(svg, /^<svg/);
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2);
    assert.match(svg, /Γ \/ √\(ln L\) = 1/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('norm monitor: which sites are attention projections (separate, fused in three, T5, BERT), cross-attention left out', () => {
  const site = (name: string, out = 12): LinearSite => ({ name, inFeatures: 4, outFeatures: out, weightKey: `${name}.weight`, layout: 'out_in' });
  assert.deepEqual(attentionProjections(site('model.layers.3.self_attn.k_proj')).map((p) => [p.layer, p.part, p.offset, p.width, p.tokenRows]), [['model.layers.3.self_attn', 'k', 0, 12, true]]);
  assert.deepEqual(attentionProjections(site('transformer.h.0.attn.c_attn', 24)).map((p) => [p.part, p.offset, p.width]), [['q', 0, 8], ['k', 8, 8], ['v', 16, 8]]);
  assert.deepEqual(attentionProjections(site('encoder.layer.1.attention.qkv', 6)).map((p) => p.part), ['q', 'k', 'v']);
  assert.deepEqual(attentionProjections(site('bert.encoder.layer.0.attention.self.value')).map((p) => [p.layer, p.part]), [['bert.encoder.layer.0.attention.self', 'v']]);
  assert.deepEqual(attentionProjections(site('decoder.block.0.layer.0.SelfAttention.q')).map((p) => [p.part, p.tokenRows]), [['q', false]]);
  assert.deepEqual(attentionProjections(site('decoder.block.0.layer.1.EncDecAttention.k')), []);
  assert.deepEqual(attentionProjections(site('model.decoder.layers.0.encoder_attn.q_proj')), []);
  assert.deepEqual(attentionProjections(site('model.layers.0.mlp.up_proj')), []);
  assert.deepEqual(attentionProjections(site('model.layers.0.self_attn.o_proj')), []);
});

test('the norm-monitor reference reruns in PyTorch to the committed fixture', { skip: torchSkip }, () => {
  requireTorch();
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-norms-ref-')), 'n.json');
  const r = spawnSync(PY, [new URL('../tools/reference/norm_monitor.py', import.meta.url).pathname, out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fresh = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.deepEqual(fresh.input_ids, FIX.input_ids);
  assert.deepEqual(fresh.lora, FIX.lora);
  for (const [i, l] of FIX.layers.entries()) for (const part of ['q', 'k', 'v']) assert.ok(Math.abs(fresh.layers[i][part] - l[part]) <= 1e-12 * l[part]);
});

test('lorakit train --monitor-norms on the command line: norms records in metrics.jsonl every --norms-every steps, normsPeak in results.json, <out>/norms.svg; --norms-every 0 is refused', () => {
  const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-norms-cli-'));
  try {
    const data = path.join(dir, 'd.jsonl');
    fs.writeFileSync(data, Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: i % 2 ? 'once upon a time there lived a king' : 'the movie was very good' })).join('\n') + '\n');
    const out = path.join(dir, 'run');
    let r = spawnSync(process.execPath, [BIN, 'train', '--task', 'causal-lm', '--model', LLAMA, '--data', data, '--epochs', '2', '--batch', '4', '--monitor-norms', '--norms-every', '2', '--out', out, '--quiet'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /norm monitor: largest Γ\/√\(ln L\) [\d.]+ .* plot: .*norms\.svg/);
    const steps = readMetrics(path.join(out, 'metrics.jsonl')).filter((x) => x.event === 'step').map((x) => x.step as number);
    const norms = readMetrics(path.join(out, 'metrics.jsonl')).filter((x) => x.event === 'norms');
    assert.deepEqual(norms.map((x) => x.step), steps.filter((s) => s === 1 || s % 2 === 0));
    const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
    const ratios = norms.flatMap((x) => (x.layers as { ratio: number }[]).map((l) => l.ratio));
    assert.equal(results.normsPeak.ratio, Math.max(...ratios));
    const svg = fs.readFileSync(path.join(out, 'norms.svg'), 'utf8');
    assert.equal((svg.match(/<polyline/g) ?? []).length, 2, 'one line per attention layer of llama-tiny');
    r = spawnSync(process.execPath, [BIN, 'train', '--task', 'causal-lm', '--model', LLAMA, '--data', data, '--norms-every', '0', '--out', path.join(dir, 'bad')], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--norms-every must be a positive integer, got '0'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a resumed run drops the norm records logged after its checkpoint, as it drops the step records (each step logged once)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-norms-drop-'));
  try {
    const file = path.join(dir, 'metrics.jsonl');
    const rows = [1, 2, 3, 4].flatMap((s) => [{ event: 'step', step: s, loss: 1 }, { event: 'norms', step: s, L: 4, bound: 1, layers: [] }]);
    fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    assert.equal(dropRecordsAfterStep(file, 2), 4);
    assert.deepEqual(readMetrics(file).map((r) => [r.event, r.step]), [['step', 1], ['norms', 1], ['step', 2], ['norms', 2]]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
