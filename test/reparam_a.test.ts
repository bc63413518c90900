// VeRA, NOLA, LoRA-XS, LoLDU, RandLoRA: forward and gradients against the
// plain-PyTorch reference (tools/reference/reparam_a.py), frozen tensors
// regenerated identically from their seeds, parameter counts equal to
// METHODS.md's formulas, dense ΔW, own SVD/LU against torch.linalg, and on the
// bundled USE model: merged == unmerged, disabled == base, training changes
// only the method's parameters (and the head).
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
import { HEAD_W } from '../src/train/classifier.ts';
import { CASES, SITES, siteInputs, siteParams, TOKENS } from './helpers/reparam_a_cases.ts';

const FIX = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const inputs = JSON.parse(fs.readFileSync(path.join(FIX, 'reparam_a_inputs.json'), 'utf8'));
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reparam_a.json'), 'utf8'));

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

for (const c of CASES) {
  test(`[${c.name}] forward and gradients match the PyTorch reference; frozen tensors regenerate identically`, async () => {
    const config = c.method.schema.parse(c.config);
    assert.ok(getMethod(c.name) === c.method, 'registered under its name');
    for (const site of SITES) {
      const { W, x, C } = siteInputs(site);
      assert.deepEqual(Array.from(W), inputs.inputs[site.name].W);
      const specs = siteParams(c, site, W);
      const fx = inputs.methods[c.name].sites[site.name];
      for (const s of specs) assert.equal(maxDiff(s.data, fx.params[s.key].data), 0, `init of ${s.key} is seeded`);
      // (== rather than deepEqual: JSON has no −0)
      for (const [k, v] of Object.entries(c.frozen(site, config, W))) assert.equal(maxDiff(v, fx.frozen[k]), 0, `frozen ${k} regenerates`);
      // paramCount == formula == what init creates
      const count = specs.reduce((n, s) => n + s.data.length, 0);
      assert.equal(c.method.paramCount(site, config), c.formula(site, config));
      assert.equal(count, c.formula(site, config));

      const g = new Graph(`${c.name}-${site.name}`);
      const xv = g.input('x', 'float32', [TOKENS, site.inFeatures]);
      const Wv = g.weight(site.weightKey, W, [site.outFeatures, site.inFeatures]);
      const p: Record<string, any> = {};
      for (const s of specs) p[s.key] = g.param(s.key, s.shape, s.data);
      const base = op.linearT(xv, Wv);
      const y = c.method.forward({ g, site, config, p, x: xv, W: Wv, base, training: true });
      g.output('y', y);
      const loss = op.reduceSum(op.mul(y, g.weight('C', C, [TOKENS, site.outFeatures])), [0, 1], false);
      const gs = grad(loss, specs.map((s) => p[s.key]));
      specs.forEach((s, i) => g.output(`grad.${s.key}`, gs[i]));
      const cg = await CompiledGraph.compile(g, { threads: 1 });
      const feeds: Record<string, any> = { x: { data: x, dims: [TOKENS, site.inFeatures] } };
      for (const s of specs) feeds[s.key] = { data: s.data, dims: s.shape };
      const out = await cg.run(feeds);
      await cg.release();
      const r = ref.methods[c.name][site.name];
      const dy = maxDiff(out.y.data as Float32Array, r.y);
      assert.ok(dy < 1e-5, `${site.name}: forward max |Δ| ${dy}`);
      for (const s of specs) {
        const gr = r.grads[s.key] as number[];
        const scale = Math.max(1, ...gr.map(Math.abs));
        const dg = maxDiff(out[`grad.${s.key}`].data as Float32Array, gr) / scale;
        assert.ok(dg < 1e-4, `${site.name}: grad ${s.key} max rel |Δ| ${dg}`);
        assert.ok(gr.some((v) => v !== 0), `reference grad ${s.key} is not all zero`);
      }
      // Dense ΔW: x·(W0 + ΔW)ᵀ equals the reference output.
      const dW = c.method.deltaWeight!(site, config, Object.fromEntries(specs.map((s) => [s.key, s.data])), W);
      const yd = new Float64Array(TOKENS * site.outFeatures);
      for (let t = 0; t < TOKENS; t++) for (let i = 0; i < site.outFeatures; i++) {
        let acc = 0;
        for (let j = 0; j < site.inFeatures; j++) acc += x[t * site.inFeatures + j] * (W[i * site.inFeatures + j] + dW[i * site.inFeatures + j]);
        yd[t * site.outFeatures + i] = acc;
      }
      assert.ok(maxDiff(yd, r.y) < 1e-4, `${site.name}: x·(W0+ΔW)ᵀ max |Δ| ${maxDiff(yd, r.y)}`);
    }
  });
}

test('own SVD and LU match torch.linalg (singular values, rank-r reconstruction; P, L, U)', () => {
  for (const site of SITES) {
    const m = site.outFeatures, n = site.inFeatures;
    const W = Float64Array.from(siteInputs(site).W);
    const L0 = ref.linalg[site.name];
    const full = svdJacobi(W, m, n);
    assert.ok(maxDiff(full.S, L0.S) < 1e-10, `singular values ${maxDiff(full.S, L0.S)}`);
    // U S Vt reconstructs W; U, V orthonormal
    const k = full.k;
    const rec = new Float64Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) { let s = 0; for (let t = 0; t < k; t++) s += full.U[i * k + t] * full.S[t] * full.Vt[t * n + j]; rec[i * n + j] = s; }
    assert.ok(maxDiff(rec, W) < 1e-10);
    for (const big of [false, true]) {
      const r = 3;
      const t = svdTopR(W, m, n, r, { exactBelow: big ? 0 : 96, oversample: 4, powerIters: 8 });
      assert.ok(maxDiff(t.S, L0.S.slice(0, r)) < 1e-6, `top-${r} singular values (randomized=${big}) ${maxDiff(t.S, L0.S.slice(0, r))}`);
    }
    const lu = luPartialPivot(W, m, n);
    assert.ok(maxDiff(permutationMatrix(lu.perm), L0.P) === 0, 'P');
    assert.ok(maxDiff(lu.L, L0.L) < 1e-12, `L ${maxDiff(lu.L, L0.L)}`);
    assert.ok(maxDiff(lu.U, L0.U) < 1e-12, `U ${maxDiff(lu.U, L0.U)}`);
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
};

before(async () => {
  model = await loadUseEncoder();
  const tok = UseTokenizer.fromVocabFile();
  data = ['A wonderful, moving film.', 'Terrible plot; I walked out.', 'Loved it!', 'Boring and far too long.'].map((t, i) => ({ ids: tok.encode(t), label: (i + 1) % 2 }));
});

for (const c of CASES) {
  test(`[${c.name}] USE: merged == unmerged (1e-4), disabled == base; training changes only its parameters`, async () => {
    const method = c.method;
    const mk = (over: Record<string, unknown> = {}) => new AdapterSet(method, method.schema.parse({ ...USE_CONFIGS[c.name], ...over }), model.sites, model.weights, { targetModules: USE_TARGETS, seed: 7 });
    const set = mk();
    const per = set.targets.reduce((n, s) => n + method.paramCount(s, set.config), 0);
    assert.equal(set.trainableCount(), per, 'trainableCount == Σ paramCount');
    const opts = { epochs: 1, lr: 1e-2, batchSize: 4, seed: 1, buckets: [16] };
    const un = new ClassificationTrainer(model, set, 2, opts);
    const merged = new ClassificationTrainer(model.withWeights(set.mergeInto(model.weights)), null, 2, opts);
    const base = new ClassificationTrainer(model, null, 2, opts);
    const [a, m, b] = [await un.embed(data), await merged.embed(data), await base.embed(data)];
    assert.ok(maxDiff(a, b) > 1e-3, `the adapter must change outputs (max |Δ| ${maxDiff(a, b)})`);
    assert.ok(maxDiff(a, m) < 1e-4, `merged vs unmerged max |Δ| ${maxDiff(a, m)}`);
    set.enabled = false;
    const off = new ClassificationTrainer(model, set, 2, opts);
    assert.ok(maxDiff(await off.embed(data), b) < 1e-6, 'disabled == base');
    for (const t of [un, merged, base, off]) await t.release();

    // Default init: ΔW = 0, the model is unchanged; a few steps train only the method's params + head.
    const fresh = mk({ init_weights: true });
    const frozenBefore = new Map([...model.weights].map(([k, v]) => [k, Float32Array.from(v.data)]));
    const init = new Map([...fresh.params].map(([k, v]) => [k, Float32Array.from(v)]));
    const t = new ClassificationTrainer(model, fresh, 2, { ...opts, epochs: 2, batchSize: 2, warmupRatio: 0 });
    // (LoRA-XS starts from R ~ N(0, 1e-5²), not exactly 0.)
    const d0 = maxDiff(await t.embed(data), b);
    assert.ok(d0 < (c.name === 'loraxs' ? 1e-3 : 1e-5), `default init leaves the model (nearly) unchanged: ${d0}`);
    const headBefore = Float32Array.from(t.head.get(HEAD_W)!);
    await t.fit(data, data);
    await t.release();
    for (const [k, v] of model.weights) assert.deepEqual(v.data, frozenBefore.get(k), `frozen weight ${k} changed`);
    const changed = [...fresh.params].filter(([k, v]) => maxDiff(v, init.get(k)!) > 0).map(([k]) => k);
    // Parameters whose gradient is zero at a zero-ΔW init (γ with λ = 0) may move only after the first step; all must have moved by now.
    assert.deepEqual(changed, [...fresh.params.keys()], 'every method parameter trained');
    assert.ok(maxDiff(t.head.get(HEAD_W)!, headBefore) > 0, 'head trained');
  });
}
