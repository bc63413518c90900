// VeRA, NOLA, LoRA-XS, LoLDU, RandLoRA, LoRA-SB: forward and gradients against the
// plain-PyTorch reference (tools/reference/reparam_a.py), on its own inputs and
// parameters; the frozen tensors lorakit derives (VeRA's projections from the
// seed, LoRA-XS's SVD and LoLDU's LU of W0) equal the ones the reference makes
// from each method's definition (NOLA's bases are lorakit's own stream: the
// reference checks them against NOLA's definition), parameter counts equal to
// METHODS.md's formulas, dense ΔW, own SVD/LU against torch.linalg, and on the
// bundled USE model: the default init leaves the model (nearly) unchanged and
// training from it changes only the method's parameters (and the head);
// LoRA-SB's gradient init. (Merged == unmerged, disabled == base, the round
// trip and training from a non-zero init run for every method in the shared
// harness, test/adapter_suite.test.ts.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { grad } from '../src/autodiff/grad.ts';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { svdJacobi, svdTopR } from '../src/linalg/svd.ts';
import { luPartialPivot, permutationMatrix } from '../src/linalg/lu.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { ClassificationTrainer, EncodedExample } from '../src/train/trainer.ts';
import { buildClassifierGraph, HEAD_W } from '../src/train/classifier.ts';
import { Trainer } from '../src/train/loop.ts';
import { ClassificationTask } from '../src/train/tasks/classification.ts';
import { makeBatches } from '../src/data/batching.ts';
import { runFitHook } from '../src/adapters/hooks.ts';
import { CASES, SITES } from './helpers/reparam_a_cases.ts';
import { Rng } from '../src/util/rng.ts';
import { assertLoraChainRule, maxAbsDiff } from './helpers/arrays.ts';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reparam_a.json'), 'utf8'));
const TOKENS: number = ref.tokens;
/** The reference's W0, x and C of a site (tools/reference/reparam_a.py draws them). */
const inputsOf = (site: { name: string }) => {
  const I = ref.inputs[site.name];
  return { W: Float32Array.from(I.W), x: Float32Array.from(I.x), C: Float32Array.from(I.C) };
};
/** How far lorakit's frozen tensors may be from the reference's: seeded draws exactly, factorizations to float32. */
const FROZEN_TOL: Record<string, number> = { vera: 0, nola: 0, loraxs: 1e-5, loldu: 1e-5 };

for (const c of CASES) {
  test(`[${c.name}] on the reference's inputs and parameters, forward and gradients match the PyTorch reference; lorakit's frozen tensors equal the ones made from the method's definition`, async () => {
    const R = ref.methods[c.name];
    const config = c.method.schema.parse(R.config);
    assert.ok(getMethod(c.name) === c.method, 'registered under its name');
    for (const site of SITES) {
      const { W, x, C } = inputsOf(site);
      const fx = R.sites[site.name];
      // lorakit's init makes the reference's keys and shapes; paramCount == formula == what init creates.
      const init = c.method.init({ site, config, rng: new Rng(`reparam-a:${c.name}`), baseWeight: W });
      assert.deepEqual(init.map((s) => [s.key, s.shape]).sort(), Object.entries<any>(fx.params).map(([k, v]) => [k, v.shape]).sort());
      const count = init.filter((s) => !c.stored?.includes(s.key)).reduce((n, s) => n + s.data.length, 0);
      assert.equal(c.method.paramCount(site, config), c.formula(site, config));
      assert.equal(count, c.formula(site, config));
      const specs = init.map((s) => ({ key: s.key, shape: s.shape, data: Float32Array.from(fx.params[s.key].data) }));
      // Frozen tensors: lorakit's own (from its seed or W0) equal the reference's, or (RandLoRA's torch-1.13 bfloat16
      // draws) the reference's are handed to the method as stored ones.
      const state = c.given?.(fx.frozen);
      if (!c.given) {
        for (const [k, v] of Object.entries(c.frozen(site, config, W))) {
          const d = maxAbsDiff(v, fx.frozen[k].data);
          assert.ok(d <= FROZEN_TOL[c.name], `${site.name}: frozen ${k} max |Δ| ${d}`);
        }
      }

      const g = new Graph(`${c.name}-${site.name}`);
      const xv = g.input('x', 'float32', [TOKENS, site.inFeatures]);
      const Wv = g.weight(site.weightKey, W, [site.outFeatures, site.inFeatures]);
      const p: Record<string, any> = {};
      for (const s of specs) p[s.key] = g.param(s.key, s.shape, s.data);
      const base = op.linearT(xv, Wv);
      const y = c.method.forward({ g, site, config, state, p, x: xv, W: Wv, base, training: true });
      g.output('y', y);
      const loss = op.reduceSum(op.mul(y, g.weight('C', C, [TOKENS, site.outFeatures])), [0, 1], false);
      const gs = grad(loss, specs.map((s) => p[s.key]));
      specs.forEach((s, i) => g.output(`grad.${s.key}`, gs[i]));
      const cg = await CompiledGraph.compile(g, { threads: 1 });
      const feeds: Record<string, any> = { x: { data: x, dims: [TOKENS, site.inFeatures] } };
      for (const s of specs) feeds[s.key] = { data: s.data, dims: s.shape };
      const out = await cg.run(feeds);
      await cg.release();
      const dy = maxAbsDiff(out.y.data as Float32Array, fx.y);
      assert.ok(dy < 1e-5, `${site.name}: forward max |Δ| ${dy}`);
      for (const s of specs) {
        const gr = fx.grads[s.key] as number[];
        const scale = Math.max(1, ...gr.map(Math.abs));
        const dg = maxAbsDiff(out[`grad.${s.key}`].data as Float32Array, gr) / scale;
        assert.ok(dg < 1e-4, `${site.name}: grad ${s.key} max rel |Δ| ${dg}`);
        assert.ok(gr.some((v) => v !== 0), `reference grad ${s.key} is not all zero`);
      }
      // Dense ΔW: x·(W0 + ΔW)ᵀ equals the reference output.
      const dW = c.method.deltaWeight!(site, config, Object.fromEntries(specs.map((s) => [s.key, s.data])), W, state);
      const yd = new Float64Array(TOKENS * site.outFeatures);
      for (let t = 0; t < TOKENS; t++) for (let i = 0; i < site.outFeatures; i++) {
        let acc = 0;
        for (let j = 0; j < site.inFeatures; j++) acc += x[t * site.inFeatures + j] * (W[i * site.inFeatures + j] + dW[i * site.inFeatures + j]);
        yd[t * site.outFeatures + i] = acc;
      }
      assert.ok(maxAbsDiff(yd, fx.y) < 1e-4, `${site.name}: x·(W0+ΔW)ᵀ max |Δ| ${maxAbsDiff(yd, fx.y)}`);
    }
  });
}

test('own SVD and LU match torch.linalg (singular values, rank-r reconstruction; P, L, U)', () => {
  for (const site of SITES) {
    const m = site.outFeatures, n = site.inFeatures;
    const W = Float64Array.from(inputsOf(site).W);
    const L0 = ref.linalg[site.name];
    const full = svdJacobi(W, m, n);
    assert.ok(maxAbsDiff(full.S, L0.S) < 1e-10, `singular values ${maxAbsDiff(full.S, L0.S)}`);
    // U S Vt reconstructs W; U, V orthonormal
    const k = full.k;
    const rec = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { let s = 0; for (let t = 0; t < k; t++) s += full.U[i * k + t] * full.S[t] * full.Vt[t * n + j]; rec[i * n + j] = s; }
    assert.ok(maxAbsDiff(rec, W) < 1e-10);
    for (const big of [false, true]) {
      const r = 3;
      const t = svdTopR(W, m, n, r, { exactBelow: big ? 0 : 96, oversample: 4, powerIters: 8 });
      assert.ok(maxAbsDiff(t.S, L0.S.slice(0, r)) < 1e-6, `top-${r} singular values (randomized=${big}) ${maxAbsDiff(t.S, L0.S.slice(0, r))}`);
    }
    const lu = luPartialPivot(W, m, n);
    assert.ok(maxAbsDiff(permutationMatrix(lu.perm), L0.P) === 0, 'P');
    assert.ok(maxAbsDiff(lu.L, L0.L) < 1e-12, `L ${maxAbsDiff(lu.L, L0.L)}`);
    assert.ok(maxAbsDiff(lu.U, L0.U) < 1e-12, `U ${maxAbsDiff(lu.U, L0.U)}`);
  }
});

// ---- on the bundled USE model -----------------------------------------------

let model: EncoderModel;
let data: EncodedExample[];
const USE_TARGETS = ['qkv', 'conv2'];
const USE_CONFIGS: Record<string, Record<string, unknown>> = {
  vera: { r: 16, init_weights: false },
  nola: { r: 4, num_basis_A: 16, num_basis_B: 16, init_weights: false },
  loraxs: { r: 4, init_weights: false },
  loldu: { r: 4, init_weights: false },
  randlora: { r: 64, randlora_alpha: 64, init_weights: false },
  lorasb: { r: 4, init_weights: false, init_batches: 2, init_batch_size: 2 },
};

before(async () => {
  model = await loadUseEncoder();
  const tok = UseTokenizer.fromVocabFile();
  data = ['A wonderful, moving film.', 'Terrible plot; I walked out.', 'Loved it!', 'Boring and far too long.'].map((t, i) => ({ ids: tok.encode(t), label: (i + 1) % 2 }));
});

for (const c of CASES) {
  test(`[${c.name}] USE: Σ paramCount == trainable count; the default init leaves the model (nearly) unchanged and training from it changes only its parameters`, async () => {
    const method = c.method;
    const mk = (over: Record<string, unknown> = {}) => new AdapterSet(method, method.schema.parse({ ...USE_CONFIGS[c.name], ...over }), model.sites, model.weights, { targetModules: USE_TARGETS, seed: 7 });
    const set = mk();
    const per = set.targets.reduce((n, s) => n + method.paramCount(s, set.config), 0);
    const storedCount = [...set.params].filter(([k]) => c.stored?.some((st) => k.endsWith(`.${st}`))).reduce((n, [, v]) => n + v.length, 0);
    assert.equal(set.trainableCount() - storedCount, per, 'trainableCount == Σ paramCount (+ stored frozen tensors)');
    const opts = { epochs: 1, lr: 1e-2, batchSize: 4, seed: 1, buckets: [16] };
    const base = new ClassificationTrainer(model, null, 2, opts);
    const b = await base.embed(data);
    await base.release();

    // Default init: ΔW = 0, the model is unchanged; a few steps train only the method's params + head.
    const fresh = mk({ init_weights: true });
    const frozenBefore = new Map([...model.weights].map(([k, v]) => [k, Float32Array.from(v.data)]));
    const init = new Map([...fresh.params].map(([k, v]) => [k, Float32Array.from(v)]));
    const t = new ClassificationTrainer(model, fresh, 2, { ...opts, epochs: 2, batchSize: 2, warmupRatio: 0 });
    // (LoRA-XS starts from R ~ N(0, 1e-5²), not exactly 0.)
    const d0 = maxAbsDiff(await t.embed(data), b);
    assert.ok(d0 < (c.name === 'loraxs' ? 1e-3 : 1e-5), `default init leaves the model (nearly) unchanged: ${d0}`);
    const headBefore = Float32Array.from(t.head.get(HEAD_W)!);
    await t.fit(data, data);
    await t.release();
    for (const [k, v] of model.weights) assert.deepEqual(v.data, frozenBefore.get(k), `frozen weight ${k} changed`);
    const changed = [...fresh.params].filter(([k, v]) => maxAbsDiff(v, init.get(k)!) > 0).map(([k]) => k);
    const isStored = (k: string) => !!c.stored?.some((st) => k.endsWith(`.${st}`));
    // Parameters whose gradient is zero at a zero-ΔW init (γ with λ = 0) may move only after the first step; all must have moved by now.
    if (!c.stored) assert.deepEqual(changed, [...fresh.params.keys()], 'every method parameter trained');
    else {
      // LoRA-SB: the gradient init (beforeFit) set A, B; the steps then moved only R.
      assert.deepEqual(changed, [...fresh.params.keys()], 'the gradient init set every tensor');
      const set2 = mk({ init_weights: true });
      let first: Map<string, Float32Array> | null = null;
      const t2 = new ClassificationTrainer(model, set2, 2, { ...opts, epochs: 2, batchSize: 2, warmupRatio: 0, onStep: () => { first ??= new Map([...set2.params].map(([k, v]) => [k, Float32Array.from(v)])); } });
      await t2.fit(data, data);
      await t2.release();
      for (const [k, v] of set2.params) {
        if (isStored(k)) assert.equal(maxAbsDiff(v, first!.get(k)!), 0, `stored ${k} stayed frozen during training`);
        else assert.ok(maxAbsDiff(v, first!.get(k)!) > 0, `${k} trained`);
      }
    }
    assert.ok(maxAbsDiff(t.head.get(HEAD_W)!, headBefore) > 0, 'head trained');
  });
}

test('frozen-weight gradients: ∂L/∂W0 agrees with LoRA (∂L/∂B = s·G·Aᵀ); LoRA-SB init = top-r SVD of −η·sign(ΣG)', async () => {
  const target = 'encoder.layer.0.attention.qkv';
  const lora = getMethod('lora');
  const set = new AdapterSet(lora, lora.schema.parse({ r: 2, lora_alpha: 4 }), model.sites, model.weights, { targetModules: [target], seed: 5 });
  const site = set.targets[0];
  const tr = new ClassificationTrainer(model, set, 2, { epochs: 1, lr: 1e-3, batchSize: 8, seed: 3 });
  // One batch with every example (the loss is a mean: the order inside the batch does not matter).
  // The loop's frozen-weight gradients (what data-dependent inits get), on the same head (same seed).
  const wg = new Trainer(new ClassificationTask(model, { numLabels: 2, seed: 3, buckets: [16] }), null, { epochs: 1, lr: 1e-3, batchSize: 8, seed: 3 });
  const G = (await wg.weightGradients(data, [site], { batches: 1, batchSize: 8 })).get(site.name)!;
  const { graph } = buildClassifierGraph(model, set, tr.head, 2, 'train');
  const cg = await CompiledGraph.compile(graph, { threads: 2 });
  const [batch] = makeBatches(data.map((d) => d.ids), data.map((d) => d.label), { batchSize: 8, buckets: [16], padId: 0 });
  const feeds: Record<string, any> = { input_ids: { data: batch.ids, dims: [batch.B, batch.T] }, attention_mask: { data: batch.mask, dims: [batch.B, batch.T] }, labels: { data: batch.labels, dims: [batch.B] } };
  for (const [k, v] of tr.params()) feeds[k] = { data: v, dims: k.startsWith('classifier') ? (k.endsWith('weight') ? [2, model.hiddenSize] : [2]) : set.shapes.get(k)! };
  const out = await cg.run(feeds);
  await cg.release();
  await tr.release();
  const keyA = `base_model.model.${target}.lora_A.weight`, keyB = `base_model.model.${target}.lora_B.weight`;
  assertLoraChainRule(G, set.params.get(keyA)!, out[`grad.${keyB}`].data as Float32Array, { out: site.outFeatures, in: site.inFeatures, r: 2, s: 2 });
  const m = site.outFeatures, n = site.inFeatures;

  // LoRA-SB's beforeFit on the same batch.
  const sb = getMethod('lorasb');
  const sbSet = new AdapterSet(sb, sb.schema.parse({ r: 3, init_lr: 1e-3, init_batches: 1, init_batch_size: 8 }), model.sites, model.weights, { targetModules: [target], seed: 5 });
  const t3 = new ClassificationTrainer(model, sbSet, 2, { epochs: 1, lr: 1e-3, batchSize: 8, seed: 3 });
  const wg3 = new Trainer(new ClassificationTask(model, { numLabels: 2, seed: 3 }), sbSet, { epochs: 1, lr: 1e-3, batchSize: 8, seed: 3 });
  await runFitHook(sbSet, { params: t3.params(), seed: 3, weightGradients: (sites, w) => wg3.weightGradients(data, sites, w) });
  await t3.release();
  const dW1 = Float64Array.from(G, (v) => -1e-3 * Math.sign(v));
  const full = svdJacobi(dW1, m, n);
  const approx = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { let s = 0; for (let t = 0; t < 3; t++) s += full.U[i * full.k + t] * full.S[t] * full.Vt[t * n + j]; approx[i * n + j] = s; }
  const got = sb.deltaWeight!(site, sbSet.config, sbSet.siteParams(site));
  const sc = maxAbsDiff(approx, new Float64Array(approx.length));
  assert.ok(maxAbsDiff(got, approx) / sc < 1e-4, `B·R·A vs rank-3 SVD of ΔW1: rel ${maxAbsDiff(got, approx) / sc}`);
});
