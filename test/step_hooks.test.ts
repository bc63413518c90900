// The general per-step hook mechanism (AdapterMethod.hooks): the trainer calls
// beforeStep (grads editable), afterStep (params editable) and feeds (extra
// non-trainable inputs) through one generic call site each.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as op from '../src/graph/ops.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import type { AdapterMethod } from '../src/adapters/types.ts';
import { ClassificationTrainer } from '../src/train/trainer.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';

test('hooks: beforeStep freezes by zeroing grads, afterStep edits params, feeds reach the graph', async () => {
  const model = await loadUseEncoder();
  const seen: { phase: string; step: number; total: number }[] = [];
  let frozenKey = '';
  let fedScale = 1;
  const hooked: AdapterMethod = {
    ...lora,
    name: 'lora-hooked',
    forward(ctx) {
      // Adapter output scaled by a fed, non-trainable input.
      const s = ctx.g.leaf('hook_scale') ?? ctx.g.input('hook_scale', 'float32', [1]);
      const h = op.gemm(ctx.x, ctx.p['lora_A.weight'], { transB: true });
      return op.add(ctx.base, op.mul(op.gemm(h, ctx.p['lora_B.weight'], { transB: true }), s));
    },
    hooks: {
      beforeStep(ctx) {
        seen.push({ phase: 'before', step: ctx.step, total: ctx.totalSteps });
        assert.ok(Number.isFinite(Number(ctx.outputs.loss.data[0])));
        frozenKey = ctx.sites[0].keys['lora_B.weight'];
        ctx.grads.get(frozenKey)!.fill(0);
      },
      afterStep(ctx) {
        seen.push({ phase: 'after', step: ctx.step, total: ctx.totalSteps });
        const a = ctx.params.get(ctx.sites[1].keys['lora_A.weight'])!;
        a[0] = 0.25; // e.g. a proximal step or a re-projection
      },
      feeds: () => ({ hook_scale: { data: Float32Array.of(fedScale), dims: [1] } }),
    },
  };
  const set = new AdapterSet(hooked, lora.schema.parse({ r: 2, lora_alpha: 2 }), model.sites, model.weights, { targetModules: ['encoder.layer.0.attention.qkv', 'encoder.layer.1.attention.qkv'], seed: 1 });
  const data = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [3, 3]].map((ids, i) => ({ ids, label: i % 2 }));
  const t = new ClassificationTrainer(model, set, 2, { epochs: 2, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
  await t.fit(data, data);
  assert.deepEqual(seen.map((s) => `${s.phase}${s.step}/${s.total}`), ['before0/4', 'after1/4', 'before1/4', 'after2/4', 'before2/4', 'after3/4', 'before3/4', 'after4/4']);
  assert.ok(set.params.get(frozenKey)!.every((v) => v === 0), 'B of the first site was frozen at 0');
  const otherB = set.params.get(`base_model.model.${set.targets[1].name}.lora_B.weight`)!;
  assert.ok(otherB.some((v) => v !== 0), 'B of the other sites trained');
  assert.equal(set.params.get(`base_model.model.${set.targets[1].name}.lora_A.weight`)![0], 0.25);
  // The fed scale reaches the graph: scale 0 = the base model.
  const withAdapter = (await t.evaluate(data)).loss;
  fedScale = 0;
  const t0 = new ClassificationTrainer(model, set, 2, { epochs: 1, lr: 1e-2, batchSize: 2, seed: 1, buckets: [16] });
  t0.head.forEach((v, k) => v.set(t.head.get(k)!));
  const off = (await t0.evaluate(data)).loss;
  set.enabled = false;
  const t1 = new ClassificationTrainer(model, set, 2, { epochs: 1, lr: 1e-2, batchSize: 2, seed: 1, buckets: [16] });
  t1.head.forEach((v, k) => v.set(t.head.get(k)!));
  const base = (await t1.evaluate(data)).loss;
  assert.ok(Math.abs(off - base) < 1e-6 && Math.abs(withAdapter - base) > 1e-6, `scale 0: ${off} vs base ${base}; trained ${withAdapter}`);
  for (const x of [t, t0, t1]) await x.release();
});

test('resume restores hook state (SMoRA β) from the checkpoint: the resumed run equals the uninterrupted one', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { smora, smoraBias } = await import('../src/adapters/smora/index.ts');
  const model = await loadUseEncoder();
  const mk = () => new AdapterSet(smora, smora.schema.parse({ num_ranks: 4, top_k: 2 }), model.sites, model.weights, { targetModules: ['encoder.layer.0.attention.qkv'], seed: 2 });
  const data = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [3, 3], [9, 8], [2, 2, 2]].map((ids, i) => ({ ids, label: i % 2 }));
  const opts = { epochs: 2, lr: 1e-2, batchSize: 2, seed: 3, warmupRatio: 0, buckets: [16], checkpointEvery: 1 };
  const site = 'encoder.layer.0.attention.qkv';
  const full = mk();
  const t1 = new ClassificationTrainer(model, full, 2, opts);
  await t1.fit(data, data);
  assert.ok(smoraBias(full, site, 4).some((v) => v !== 0), 'β moved during training');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-hookstate-'));
  const t2 = new ClassificationTrainer(model, mk(), 2, { ...opts, outDir: dir, stopAfterSteps: 3 });
  await t2.fit(data, data);
  const resumed = mk();
  const t3 = new ClassificationTrainer(model, resumed, 2, { ...opts, outDir: dir, resume: true });
  await t3.fit(data, data);
  assert.deepEqual(smoraBias(resumed, site, 4), smoraBias(full, site, 4));
  for (const [k, v] of full.params) assert.deepEqual(resumed.params.get(k), v, `param ${k} differs after resume`);
  for (const t of [t1, t2, t3]) await t.release();
});

test('hooks: a loss term joins the training loss, owned tensors get only the method\'s update, step figures reach metrics.jsonl, run state survives --resume, feeds see the step', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { readMetrics } = await import('../src/train/metrics.ts');
  const model = await loadUseEncoder();
  const lam = 0.05;
  const fedSteps: number[] = [];
  // A LoRA whose B the method updates itself with plain SGD (lr from the schedule), counting its own steps as run state.
  const seen: { lr: number; gB: Float32Array }[] = [];
  const own: AdapterMethod<any, { sgdSteps: number }> = {
    ...lora,
    name: 'lora-owned',
    createState: () => ({ sgdSteps: 0 }),
    hooks: {
      ownedParams: ({ sites }) => sites.map((s) => s.keys['lora_B.weight']),
      optimizerStep(ctx) {
        for (const s of ctx.sites) {
          const k = s.keys['lora_B.weight'];
          const p = ctx.params.get(k)!, g = ctx.grads.get(k)!;
          seen.push({ lr: ctx.lr, gB: Float32Array.from(g) });
          for (let i = 0; i < p.length; i++) p[i] -= ctx.lr * g[i];
        }
        ctx.state.sgdSteps++;
      },
      lossTerm: ({ sites }) => op.mul(sites.map((s) => op.reduceSum(op.abs(s.p['lora_A.weight']), [0, 1], false)).reduce((a, b) => op.add(a, b)), lam),
      stepMetrics: ({ state }) => ({ sgdSteps: state.sgdSteps }),
      saveRunState: ({ state }) => ({ sgdSteps: state.sgdSteps }),
      loadRunState: ({ state }, saved: any) => {
        state.sgdSteps = saved.sgdSteps;
      },
      feeds: ({ training, step }) => {
        if (training) fedSteps.push(step!);
        return {};
      },
    },
  };
  const mk = () => new AdapterSet(own, lora.schema.parse({ r: 2, lora_alpha: 2, init_lora_weights: false }), model.sites, model.weights, { targetModules: ['encoder.layer.0.attention.qkv'], seed: 5 });
  const data = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [3, 3], [9, 8], [2, 2, 2]].map((ids, i) => ({ ids, label: i % 2 }));
  const opts = { epochs: 2, lr: 1e-2, batchSize: 2, seed: 3, warmupRatio: 0, buckets: [16], checkpointEvery: 1 };
  // The first step by hand: loss = task loss + λ·Σ|A|, B moves by exactly −lr·∂L/∂B (no Adam), A by Adam.
  const set = mk();
  const site = set.targets[0];
  const kA = `base_model.model.${site.name}.lora_A.weight`, kB = `base_model.model.${site.name}.lora_B.weight`;
  const A0 = Float32Array.from(set.params.get(kA)!), B0 = Float32Array.from(set.params.get(kB)!);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-owned-'));
  const t = new ClassificationTrainer(model, set, 2, { ...opts, epochs: 1, outDir: dir, stopAfterSteps: 1 });
  await t.fit(data, data);
  let sumA = 0;
  for (const v of A0) sumA += Math.abs(v);
  const rec = readMetrics(path.join(dir, 'metrics.jsonl')).find((r) => r.event === 'step')!;
  assert.ok(Math.abs((rec.adapterLoss as number) - lam * sumA) < 1e-5 * lam * sumA, `adapterLoss ${rec.adapterLoss} vs λ·Σ|A| ${lam * sumA}`);
  assert.deepEqual(rec.adapter, { sgdSteps: 1 });
  // B moved by exactly −lr·∂L/∂B (the method's SGD, no Adam step on top); A moved under the shared AdamW.
  const B1 = set.params.get(kB)!;
  assert.equal(seen.length, 1);
  assert.ok(seen[0].gB.some((v) => v !== 0));
  B1.forEach((v, i) => assert.equal(v, Math.fround(B0[i] - seen[0].lr * seen[0].gB[i]), `B[${i}]`));
  assert.ok(set.params.get(kA)!.some((v, i) => v !== A0[i]), 'A moved under the shared AdamW');
  await t.release();
  // Run state and resume: interrupted after 3 steps then resumed == uninterrupted (B is updated by the method alone).
  const full = mk();
  const tf = new ClassificationTrainer(model, full, 2, opts);
  await tf.fit(data, data);
  assert.equal((full.state as any).sgdSteps, 6);
  const dir2 = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-owned2-'));
  const part = mk();
  const tp = new ClassificationTrainer(model, part, 2, { ...opts, outDir: dir2, stopAfterSteps: 3 });
  await tp.fit(data, data);
  const resumed = mk();
  const tr = new ClassificationTrainer(model, resumed, 2, { ...opts, outDir: dir2, resume: true });
  await tr.fit(data, data);
  assert.equal((resumed.state as any).sgdSteps, 6, 'the method\'s step count continued from the checkpoint');
  for (const [k, v] of full.params) assert.deepEqual(resumed.params.get(k), v, `param ${k} differs after resume`);
  const steps = readMetrics(path.join(dir2, 'metrics.jsonl')).filter((r) => r.event === 'step').map((r) => (r.adapter as any).sgdSteps);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6]);
  assert.ok(fedSteps.includes(0) && fedSteps.includes(5), `feeds saw the training steps: ${fedSteps.join(',')}`);
  for (const x of [tf, tp, tr]) await x.release();
});

test('the best validation epoch\'s weights come back with the method\'s state of that epoch (per-module state and run state)', async () => {
  const model = await loadUseEncoder();
  // A LoRA whose per-module state and run state count the steps taken.
  const counting: AdapterMethod<any, { steps: number; saved: number }> = {
    ...lora,
    name: 'lora-counting',
    createState: () => ({ steps: 0, saved: 0 }),
    hooks: {
      afterStep: ({ state }) => void state.steps++,
      stateKeys: ['counter'],
      saveState: ({ state }) => ({ counter: { shape: [1], data: Float32Array.of(state.steps) } }),
      loadState: ({ state, tensors }) => void (state.steps = tensors.counter.data[0]),
      saveRunState: ({ state }) => ({ saved: state.steps }),
      loadRunState: ({ state }, s: any) => void (state.saved = s.saved),
    },
  };
  const set = new AdapterSet(counting, lora.schema.parse({ r: 2 }), model.sites, model.weights, { targetModules: ['encoder.layer.0.attention.qkv'], seed: 1 });
  const data = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [3, 3]].map((ids, i) => ({ ids, label: i % 2 }));
  // A vanishing learning rate: the validation accuracy never improves after the first epoch, which stays the best.
  const t = new ClassificationTrainer(model, set, 2, { epochs: 3, lr: 1e-12, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
  const r = await t.fit(data, data);
  await t.release();
  assert.deepEqual(r.history.map((h) => h.improved), [true, false, false]);
  const st = set.state as { steps: number; saved: number };
  assert.equal(st.steps, 2, 'the per-module state of the best (first) epoch, not of the last step (6)');
  assert.equal(st.saved, 2, 'the run state of the best epoch');
});
