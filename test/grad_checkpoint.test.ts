// Gradient checkpointing (src/autodiff/checkpoint.ts): the training graph that
// recomputes each sublayer's forward in its backward part gives the same loss
// and gradients as the one that keeps every activation (itself checked against
// finite differences and PyTorch elsewhere), on the llama-tiny, bert, t5-tiny
// and bart-tiny fixtures with a LoRA on every linear layer; and it keeps less.
// In the encoder-decoders the decoder is cut too (its segments carry the
// encoder output). `lorakit train --grad-checkpoint` (and `--low-memory`)
// train the same adapter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readAdapter } from '../src/peft/adapter_files.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { adapterFeeds } from '../src/adapters/feeds.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { planCheckpoints } from '../src/autodiff/checkpoint.ts';
import { differentiable } from '../src/autodiff/grad.ts';
import { liveNodes, resolveShape, savedActivations } from '../src/graph/cost.ts';
import { Graph, type Value } from '../src/graph/ir.ts';
import { loadEncoderModel, loadModel } from '../src/models/hf_registry.ts';
import type { Seq2SeqModel } from '../src/models/seq2seq.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';
import { CompiledGraph, type HostTensor } from '../src/runtime/session.ts';
import { buildTaskGraph } from '../src/train/loop.ts';
import type { TrainTask } from '../src/train/task.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';
import { ClassificationTask } from '../src/train/tasks/classification.ts';
import { Seq2SeqTask } from '../src/train/tasks/seq2seq.ts';
import { Rng } from '../src/util/rng.ts';

const fixture = (name: string) => new URL(`./fixtures/hf/${name}`, import.meta.url).pathname;

/** A LoRA on every linear site, B made non-zero (seeded) so every gradient is. */
function adapterOn(sites: LinearSite[], weights: WeightMap): AdapterSet {
  const targets = [...new Set(sites.map((s) => s.name.split('.').pop()!))];
  const set = new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 8 }), sites, weights, { targetModules: targets, seed: 0 });
  const rng = new Rng(7);
  for (const v of set.params.values()) for (let i = 0; i < v.length; i++) v[i] = rng.uniformRange(-0.5, 0.5);
  return set;
}

async function gradients<B>(task: TrainTask<any, B>, adapters: AdapterSet, batch: B, gradCheckpoint: boolean, optimization: 'basic' | 'all') {
  const { graph, trainable } = buildTaskGraph(task, adapters.linear({ training: true }), 'train', { gradCheckpoint });
  const feeds: Record<string, HostTensor> = { ...task.feeds(batch), ...adapterFeeds(adapters, { training: true }) };
  for (const [k, t] of task.params) feeds[k] = { data: t.data, dims: t.shape };
  const cg = await CompiledGraph.compile(graph, { threads: 1, optimization });
  const out = await cg.run(feeds, ['loss', ...trainable.map((k) => `grad.${k}`)]);
  await cg.release();
  return { out, trainable, nodes: graph.nodes.length, graph };
}

/**
 * Loss and gradients with and without checkpointing. With onnxruntime's 'basic'
 * optimizations both graphs run the same kernels on the same values: equal to
 * 1e-6 (relative, per element). With 'all' (what training uses), onnxruntime
 * fuses the forward pass differently once the backward no longer reads its
 * inner values (llama's RMSNorm into one kernel): float32 rounding, so each
 * tensor is compared to its largest entry. Returns the worst figures.
 */
async function checkSame<B>(task: TrainTask<any, B>, adapters: AdapterSet, batch: B, dims: Record<string, number>) {
  const worst = { basic: 0, all: 0 };
  for (const optimization of ['basic', 'all'] as const) {
    const kept = await gradients(task, adapters, batch, false, optimization);
    const recomputed = await gradients(task, adapters, batch, true, optimization);
    assert.deepEqual(recomputed.trainable, kept.trainable);
    let nonzero = 0;
    for (const k of ['loss', ...kept.trainable.map((t) => `grad.${t}`)]) {
      const a = kept.out[k].data as Float32Array, b = recomputed.out[k].data as Float32Array;
      assert.equal(b.length, a.length, k);
      let scale = 1;
      if (optimization === 'all') for (const x of a) scale = Math.max(scale, Math.abs(x));
      for (let i = 0; i < a.length; i++) {
        const d = Math.abs(a[i] - b[i]) / (optimization === 'basic' ? Math.max(1, Math.abs(a[i])) : scale);
        assert.ok(d <= (optimization === 'basic' ? 1e-6 : 2e-5), `${optimization}: ${k}[${i}]: ${b[i]} recomputed vs ${a[i]} kept`);
        worst[optimization] = Math.max(worst[optimization], d);
        if (a[i] !== 0) nonzero++;
      }
    }
    assert.ok(nonzero > 100, 'the gradients are not all zero');
    // Checkpointing did something: the backward recomputes nodes, and less is kept for it.
    assert.ok(recomputed.nodes > kept.nodes, `${recomputed.nodes} vs ${kept.nodes} nodes`);
    const before = savedActivations(kept.graph, dims).bytes, after = savedActivations(recomputed.graph, dims).bytes;
    assert.ok(after < 0.8 * before, `activations kept for backward: ${after} bytes with checkpointing vs ${before} without`);
  }
  return worst;
}

/** A decoder-only or encoder-only model (2 layers): checkpointed gradients equal, 4 segments, and the carried-value rule changes nothing. */
async function checkSingleStack<B extends { B: number; T: number }>(task: TrainTask<any, B>, adapters: AdapterSet, batch: B) {
  const dims = { B: batch.B, T: batch.T };
  await checkSame(task, adapters, batch, dims);
  const { plain, carrying } = plans(task, adapters, dims);
  assert.equal(plain.segments, 4);
  assert.deepEqual(carrying, plain);
}

test('gradient checkpointing: llama-tiny causal LM, same loss and gradients (≤ 1e-6) as keeping every activation', async () => {
  const model = await loadDecoder(fixture('llama-tiny'));
  const task = new CausalLmTask(model, { padId: 0 });
  const rng = new Rng(3);
  const examples = [40, 33].map((n) => ({ ids: Array.from({ length: n }, () => 3 + rng.int(120)) }));
  const [batch] = task.batches(examples, 2, null);
  await checkSingleStack(task, adapterOn(model.sites, model.weights), batch);
});

test('gradient checkpointing: bert classification, same loss and gradients (≤ 1e-6) as keeping every activation', async () => {
  const { model } = await loadEncoderModel(fixture('bert'));
  const task = new ClassificationTask(model, { numLabels: 3, seed: 0 });
  const rng = new Rng(4);
  const examples = [30, 24, 17].map((n, i) => ({ ids: [101, ...Array.from({ length: n }, () => 3 + rng.int(100)), 102], label: i }));
  const [batch] = task.batches(examples, 3, null);
  await checkSingleStack(task, adapterOn(model.sites, model.weights), batch);
});

for (const [name, segments] of [['t5-tiny', [6, 11]], ['bart-tiny', [5, 10]]] as const) {
  test(`gradient checkpointing: ${name} seq2seq, the decoder is cut too; same loss and gradients (≤ 1e-6) as keeping every activation`, async () => {
    const model = (await loadModel(fixture(name))).model as Seq2SeqModel;
    const task = new Seq2SeqTask(model);
    const rng = new Rng(5);
    const examples = [[21, 9], [16, 12]].map(([s, t]) => ({ src: Array.from({ length: s }, () => 3 + rng.int(120)), tgt: Array.from({ length: t }, () => 3 + rng.int(120)) }));
    const [batch] = task.batches(examples, 2, null);
    const dims = { B: batch.B, S: batch.S, T: batch.T };
    const adapters = adapterOn(model.sites, model.weights);
    // The encoder output reaches the loss through every decoder layer: its gradient sums every decoder segment's.
    await checkSame(task, adapters, batch, dims);
    const { plain, carrying } = plans(task, adapters, dims);
    // Without the rule only the encoder is cut: the decoder is one segment (its backward holds all of its activations at once).
    assert.deepEqual([plain.segments, carrying.segments], segments);
    assert.equal(plain.decoderSegments, 1);
    assert.ok(carrying.decoderSegments >= 5, `${carrying.decoderSegments} decoder segments`);
    assert.ok(carrying.largest < 0.5 * plain.largest, `largest segment's activations: ${carrying.largest} bytes with carried values vs ${plain.largest} without`);
    // More cuts are kept (one [B, T, hidden] each, and the encoder output), but the backward's peak, hand-off + largest segment, drops.
    assert.ok(carrying.handOff > plain.handOff && carrying.handOff < 1.25 * plain.handOff, `hand-off: ${carrying.handOff} bytes with carried values vs ${plain.handOff} without`);
    assert.ok(carrying.handOff + carrying.largest < 0.7 * (plain.handOff + plain.largest), JSON.stringify({ plain, carrying }));
  });
}

/**
 * The checkpoint plans of `task`'s training graph with and without carried
 * values: segments, those in the decoder (they make [B, T, ...] values), the
 * largest segment's share of the activations the backward reads (what the
 * backward holds at once when it recomputes that segment), and the hand-off
 * (the activations the checkpointed graph keeps from its forward pass), in bytes.
 */
function plans<B>(task: TrainTask<any, B>, adapters: AdapterSet, dims: Record<string, number>) {
  const { graph } = buildTaskGraph(task, adapters.linear({ training: true }), 'train');
  const forward = new Graph('forward');
  task.build(forward, adapters.linear({ training: true }), 'train');
  const nodes = graph.nodes.slice(0, forward.nodes.length); // the training graph's forward part (the backward is appended)
  assert.deepEqual(nodes.map((n) => n.op), forward.nodes.map((n) => n.op));
  const active = differentiable(nodes, graph.params());
  const fwd = liveNodes(graph, graph.outputs.filter((o) => !o.name.startsWith('grad.')).map((o) => o.value));
  const saved = new Set<Value>();
  for (const n of liveNodes(graph)) if (!fwd.has(n)) for (const x of n.inputs) if (x?.node && fwd.has(x.node)) saved.add(x);
  const summary = (carried: boolean) => {
    const plan = planCheckpoints(nodes, active, { carried });
    const bytes = plan.segments.map(() => 0);
    for (const v of saved) {
      const k = plan.segmentOf.get(v.node!);
      if (k !== undefined) bytes[k] += resolveShape(v.shape, dims, v.describe()).reduce((p, q) => p * q, 1) * 4;
    }
    const decoderSegments = plan.segments.filter((seg) => seg.some((n) => n.outputs.some((o) => o.shape.some((d) => String(d).includes('T'))))).length;
    const handOff = savedActivations(buildTaskGraph(task, adapters.linear({ training: true }), 'train', { gradCheckpoint: { carried } }).graph, dims).bytes;
    return { segments: plan.segments.length, decoderSegments, largest: Math.max(...bytes), handOff };
  };
  return { plain: summary(false), carrying: summary(true) };
}

const CLI_CASES = [
  // llama-tiny's 2 layers have 2 residual sublayers each; t5-tiny's decoder is cut too (the carried encoder output).
  { task: 'causal-lm', fixture: 'llama-tiny', minSegments: 3, rows: ['once upon a time there lived a king', 'what is this? a good movie', 'who was there? the queen and the king', 'hello world, i love music'].map((text) => ({ text })) },
  { task: 'seq2seq', fixture: 't5-tiny', minSegments: 8, rows: ['red', 'green', 'blue', 'black'].map((c) => ({ source: `what colour is ${c}?`, target: `it is ${c}` })) },
] as const;
for (const c of CLI_CASES) test(`lorakit train --grad-checkpoint / --low-memory (${c.task}, ${c.fixture}): the same adapter as without`, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-gradckpt-'));
  try {
    const data = path.join(dir, 'data.jsonl');
    fs.writeFileSync(data, c.rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const train = (name: string, ...extra: string[]) => {
      const out = path.join(dir, name);
      const r = spawnSync(process.execPath, [path.resolve('bin/lorakit.js'), 'train', '--task', c.task, '--model', fixture(c.fixture), '--data', data,
        '--target-modules', 'all-linear', '--epochs', '2', '--batch', '2', '--lr', '0.01', '--seed', '5', '--quiet', '--out', out, ...extra], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '1' } });
      assert.equal(r.status, 0, r.stderr);
      return { tensors: readAdapter(path.join(out, 'adapter')).tensors, results: JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')) };
    };
    const { tensors: plain, results } = train('plain');
    assert.equal(results.gradCheckpoint, undefined);
    assert.equal(results.prepackWeights, undefined);
    for (const flag of ['--grad-checkpoint', '--low-memory']) {
      const { tensors: other, results } = train(flag.slice(2), flag);
      // The flag reached the training graph / the session.
      if (flag === '--grad-checkpoint') assert.ok(results.gradCheckpoint?.recomputedSegments >= c.minSegments, JSON.stringify(results.gradCheckpoint));
      else assert.equal(results.prepackWeights, false);
      assert.deepEqual([...other.keys()].sort(), [...plain.keys()].sort());
      for (const [k, t] of plain) {
        let scale = 0;
        for (const x of t.data) scale = Math.max(scale, Math.abs(x));
        const o = other.get(k)!.data;
        for (let i = 0; i < t.data.length; i++) assert.ok(Math.abs(o[i] - t.data[i]) <= 1e-4 * scale, `${flag}: ${k}[${i}] ${o[i]} vs ${t.data[i]}`);
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
