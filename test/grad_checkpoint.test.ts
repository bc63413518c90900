// Gradient checkpointing (src/autodiff/checkpoint.ts): the training graph that
// recomputes each sublayer's forward in its backward part gives the same loss
// and gradients as the one that keeps every activation (itself checked against
// finite differences and PyTorch elsewhere), on the llama-tiny and bert
// fixtures with a LoRA on every linear layer; and it keeps less.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterSet } from '../src/adapters/inject.ts';
import { adapterFeeds } from '../src/adapters/feeds.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { savedActivations } from '../src/graph/cost.ts';
import { loadEncoderModel } from '../src/models/hf_registry.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';
import { CompiledGraph, type HostTensor } from '../src/runtime/session.ts';
import { buildTaskGraph } from '../src/train/loop.ts';
import type { TrainTask } from '../src/train/task.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';
import { ClassificationTask } from '../src/train/tasks/classification.ts';
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

test('gradient checkpointing: llama-tiny causal LM, same loss and gradients (≤ 1e-6) as keeping every activation', async () => {
  const model = await loadDecoder(fixture('llama-tiny'));
  const task = new CausalLmTask(model, { padId: 0 });
  const rng = new Rng(3);
  const examples = [40, 33].map((n) => ({ ids: Array.from({ length: n }, () => 3 + rng.int(120)) }));
  const [batch] = task.batches(examples, 2, null);
  await checkSame(task, adapterOn(model.sites, model.weights), batch, { B: batch.B, T: batch.T });
});

test('gradient checkpointing: bert classification, same loss and gradients (≤ 1e-6) as keeping every activation', async () => {
  const { model } = await loadEncoderModel(fixture('bert'));
  const task = new ClassificationTask(model, { numLabels: 3, seed: 0 });
  const rng = new Rng(4);
  const examples = [30, 24, 17].map((n, i) => ({ ids: [101, ...Array.from({ length: n }, () => 3 + rng.int(100)), 102], label: i }));
  const [batch] = task.batches(examples, 3, null);
  await checkSame(task, adapterOn(model.sites, model.weights), batch, { B: batch.B, T: batch.T });
});
