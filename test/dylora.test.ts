// DyLoRA (src/adapters/dylora/) against a PyTorch transcription of its official
// layer (tools/reference/dylora.py → test/fixtures/dylora.json): the frozen-mode
// forward and gradients at b = 1, 3 and r (only component b learns), the
// evaluation forward at every b, two AdamW steps at b1 ≠ b2 (detached rows still
// move through momentum and weight decay), and the per-step draw of b.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { adapterFeeds } from '../src/adapters/feeds.ts';
import { dylora, drawRank, setEvalRank, type DyloraState } from '../src/adapters/dylora/index.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { ClassificationTrainer } from '../src/train/trainer.ts';

const F = JSON.parse(fs.readFileSync(new URL('./fixtures/dylora.json', import.meta.url), 'utf8'));
const kA = 'base_model.model.m.lora_A.weight', kB = 'base_model.model.m.lora_B.weight';

function worst(got: ArrayLike<number>, want: number[]): number {
  assert.equal(got.length, want.length);
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  return w;
}

async function toy() {
  const site: LinearSite = { name: 'm', inFeatures: F.in, outFeatures: F.out, weightKey: 'm.weight', layout: 'out_in' };
  const weights: WeightMap = new Map([['m.weight', { shape: [F.out, F.in], data: Float32Array.from(F.W) }]]);
  const set = new AdapterSet(dylora, dylora.schema.parse({ r: F.r, lora_alpha: F.lora_alpha }), [site], weights, { targetModules: 'all-linear' });
  set.params.get(kA)!.set(F.A);
  set.params.get(kB)!.set(F.B);
  const graphs: Record<string, CompiledGraph> = {};
  for (const training of [true, false]) {
    const g = new Graph(`dylora-${training}`);
    const x = g.input('x', 'float32', [F.N, F.in]);
    const y = set.linear({ training })(site, x, g.weight('m.weight', Float32Array.from(F.W), [F.out, F.in]));
    g.output('y', y);
    if (training) {
      const loss = op.reduceSum(op.mul(y, g.weight('R', Float32Array.from(F.R), [F.N, F.out])), [0, 1], false);
      const [gA, gB] = grad(loss, [g.leaf(kA)!, g.leaf(kB)!]);
      g.output('gA', gA);
      g.output('gB', gB);
    }
    graphs[String(training)] = await CompiledGraph.compile(g, { threads: 1 });
  }
  const run = (training: boolean) => graphs[String(training)].run({ x: { data: Float32Array.from(F.x), dims: [F.N, F.in] }, ...adapterFeeds(set, { training, at: { step: 0, seed: 0 } }) });
  return { set, run, release: async () => Promise.all(Object.values(graphs).map((c) => c.release())) };
}

test('DyLoRA frozen-mode forward and gradients at b = 1, 3, r equal the transcription (1e-5); only component b has a gradient', async () => {
  const t = await toy();
  const st = t.set.state as DyloraState;
  const n = F.in, m = F.out, r = F.r;
  for (const c of F.train) {
    st.draw = () => c.b;
    const out = await t.run(true);
    assert.ok(worst(out.y.data as Float32Array, c.y) < 1e-5, `b ${c.b}: y`);
    assert.ok(worst(out.gA.data as Float32Array, c.gA) < 1e-5, `b ${c.b}: ∂L/∂A`);
    assert.ok(worst(out.gB.data as Float32Array, c.gB) < 1e-5, `b ${c.b}: ∂L/∂B`);
    const gA = out.gA.data as Float32Array, gB = out.gB.data as Float32Array;
    for (let k = 0; k < r; k++) {
      const rowA = gA.subarray(k * n, (k + 1) * n);
      let colB = 0;
      for (let i = 0; i < m; i++) colB += Math.abs(gB[i * r + k]);
      if (k === c.b - 1) assert.ok(rowA.some((v) => v !== 0) && colB > 0, `b ${c.b}: component ${k + 1} learns`);
      else assert.ok(rowA.every((v) => v === 0) && colB === 0, `b ${c.b}: component ${k + 1} has no gradient`);
    }
  }
  await t.release();
});

test('DyLoRA evaluation at every b = 1..r equals the transcription (1e-5) without retraining; factors and merge are (α/b)·B[:, :b]·A[:b]', async () => {
  const t = await toy();
  for (const c of F.eval) {
    setEvalRank(t.set, c.b);
    const out = await t.run(false);
    assert.ok(worst(out.y.data as Float32Array, c.y) < 1e-5, `b ${c.b}`);
    const f = t.set.factorsFor(t.set.targets[0]);
    assert.equal(f.r, c.b);
    assert.equal(f.scale, F.lora_alpha / c.b);
  }
  assert.throws(() => setEvalRank(t.set, F.r + 1), /\[1, 5\]/);
  await t.release();
});

test('DyLoRA: two AdamW steps at b1 = 4, b2 = 2 move the detached rows as torch.optim.AdamW does (momentum carried over, weight decay) (1e-6)', async () => {
  const t = await toy();
  const st = t.set.state as DyloraState;
  const opt = new AdamW(t.set.params, { lr: F.adamw.lr, weightDecay: F.adamw.weight_decay });
  const A0 = Float32Array.from(t.set.params.get(kA)!);
  for (const s of F.adamw.steps) {
    st.draw = () => s.b;
    const out = await t.run(true);
    opt.step(new Map([[kA, out.gA.data as Float32Array], [kB, out.gB.data as Float32Array]]), F.adamw.lr);
    assert.ok(worst(t.set.params.get(kA)!, s.A) < 1e-6, `after b ${s.b}: A`);
    assert.ok(worst(t.set.params.get(kB)!, s.B) < 1e-6, `after b ${s.b}: B`);
  }
  // Row 1 (component 1) never had a gradient, yet it moved (weight decay), and row 4 kept moving at b = 2 (momentum).
  const A = t.set.params.get(kA)!;
  assert.ok(A[0] !== A0[0] && A[3 * F.in] !== A0[3 * F.in]);
  await t.release();
});

test('DyLoRA draws one b per step, uniform on 1..r, shared by every layer, the same for the same (seed, step); the loop logs it', async () => {
  const counts = new Array(8).fill(0);
  for (let s = 0; s < 8000; s++) counts[drawRank(s, 8, 42) - 1]++;
  for (const c of counts) assert.ok(Math.abs(c - 1000) < 4 * Math.sqrt(1000 * (7 / 8)), `counts ${counts}`);
  assert.equal(drawRank(17, 8, 3), drawRank(17, 8, 3));
  // Through the loop with an injected draw: called once per step, in step order; every layer sees that b (one shared feed).
  const model = await loadUseEncoder();
  const set = new AdapterSet(dylora, dylora.schema.parse({ r: 4 }), model.sites, model.weights, { targetModules: ['qkv', 'conv1'], seed: 1 });
  const calls: number[] = [];
  (set.state as DyloraState).draw = (step) => {
    calls.push(step);
    return 1 + (step % 4);
  };
  const fs2 = await import('node:fs'), os = await import('node:os'), path = await import('node:path');
  const { readMetrics } = await import('../src/train/metrics.ts');
  const dir = fs2.mkdtempSync(path.join(os.tmpdir(), 'lorakit-dylora-'));
  const data = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [3, 3], [9, 8], [2, 2, 2]].map((ids, i) => ({ ids, label: i % 2 }));
  const tr = new ClassificationTrainer(model, set, 2, { epochs: 1, lr: 1e-2, batchSize: 1, seed: 1, buckets: [16], outDir: dir });
  await tr.fit(data, data.slice(0, 2));
  await tr.release();
  assert.deepEqual(calls, [0, 1, 2, 3, 4, 5]);
  const ranks = readMetrics(path.join(dir, 'metrics.jsonl')).filter((r) => r.event === 'step').map((r) => (r.adapter as any).rank);
  assert.deepEqual(ranks, [1, 2, 3, 4, 1, 2]);
});
