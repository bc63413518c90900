// Reparameterization methods, batch B (Hydra, SLTrain, FourierFT, SMoRA, LaMDA,
// LoCA): forward and gradients against the plain-PyTorch reference
// (tools/reference/reparam_b.py → test/fixtures/reparam_b.json), parameter
// counts against METHODS.md's formulas, and on the bundled USE model: a few
// training steps from `init_weights: true` (zero B / spectrum) that change only
// the method's parameters (+ head), SMoRA's balancing, LaMDA's freezing
// schedule and LoCA's location step. (Merged == unmerged, disabled == base,
// the round trip and training from a non-zero init run for every method in
// the shared harness, test/adapter_suite.test.ts.)
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import type { AdapterMethod } from '../src/adapters/types.ts';
import type { EncoderModel, LinearSite } from '../src/models/types.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { tinyReviews } from './helpers/use_reviews.ts';
import { ClassificationTrainer } from '../src/train/trainer.ts';
import { Rng } from '../src/util/rng.ts';
import { hydra } from '../src/adapters/hydra/index.ts';
import { sltrain, sltrainSupport } from '../src/adapters/sltrain/index.ts';
import { fourierft, fourierftIndices } from '../src/adapters/fourierft/index.ts';
import { sltrainNnz } from '../src/adapters/sltrain/config.ts';
import { smora, smoraBias, updateBias, loadOutput } from '../src/adapters/smora/index.ts';
import { lamda, lamdaFactors } from '../src/adapters/lamda/index.ts';
import { frozenColumns } from '../src/adapters/lamda/config.ts';
import { loca, moveLocations, fdOutput } from '../src/adapters/loca/index.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/reparam_b.json', import.meta.url), 'utf8'));
const METHODS: Record<string, AdapterMethod> = { hydra, sltrain, fourierft, smora, lamda, loca };

function close(got: ArrayLike<number>, want: number[], tol: number, what: string) {
  assert.equal(got.length, want.length, `${what}: length`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
  assert.ok(worst <= tol, `${what}: max scaled |Δ| ${worst.toExponential(2)} > ${tol}`);
}

/** One linear site, fixture's W (out_in, or transposed to in_out), through the method's forward. */
async function runFixture(name: string, layout: 'out_in' | 'in_out') {
  const c = FIX.cases[name];
  const method = METHODS[name];
  const config = method.schema.parse(c.config);
  const m = FIX.out as number, n = FIX.in as number, N = FIX.n as number;
  const site: LinearSite = { name: FIX.site, inFeatures: n, outFeatures: m, weightKey: 'w', layout };
  const g = new Graph('ref');
  const x = g.input('x', 'float32', [N, n]);
  let Wdata = Float32Array.from(FIX.W as number[]);
  if (layout === 'in_out') {
    const t = new Float32Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = Wdata[i * n + j];
    Wdata = t;
  }
  const W = g.weight('w', Wdata, layout === 'out_in' ? [m, n] : [n, m]);
  const bias = g.weight('b', Float32Array.from(FIX.b as number[]), [m]);
  const base = layout === 'out_in' ? op.linearT(x, W, bias) : op.linear(x, W, bias);
  const p: Record<string, any> = {};
  for (const [k, v] of Object.entries<any>(c.params)) p[k] = g.param(k, v.shape, Float32Array.from(v.data));
  const y = method.forward({ g, site, config, p, x, W, bias, base, training: true });
  const loss = op.reduceSum(op.mul(y, g.weight('R', Float32Array.from(FIX.R as number[]), [N, m])), [0, 1], false);
  const keys = Object.keys(p);
  const gs = grad(loss, keys.map((k) => p[k]));
  g.output('y', y);
  keys.forEach((k, i) => g.output(`g:${k}`, gs[i]));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const feeds: Record<string, any> = { x: { data: Float32Array.from(FIX.x as number[]), dims: [N, n] } };
  for (const k of keys) feeds[k] = { data: Float32Array.from(c.params[k].data), dims: c.params[k].shape };
  for (const [k, v] of Object.entries<any>(c.feeds ?? {})) feeds[k] = { data: Float32Array.from(v.data), dims: v.shape };
  const res = await cg.run(feeds);
  await cg.release();
  return { c, res, keys, config, site };
}

for (const name of Object.keys(METHODS)) {
  test(`[${name}] forward and gradients match the PyTorch reference (both weight layouts)`, async () => {
    for (const layout of ['out_in', 'in_out'] as const) {
      const { c, res, keys } = await runFixture(name, layout);
      close(res.y.data as Float32Array, c.y, 1e-5, `${name} ${layout} y`);
      for (const k of keys) if (c.grads[k]) close(res[`g:${k}`].data as Float32Array, c.grads[k], 1e-4, `${name} ${layout} ∂L/∂${k}`);
      if (c.fd) close(res[fdOutput(FIX.site)].data as Float32Array, c.fd, 1e-4, `${name} ${layout} Ĝ table`);
    }
  });

  if (METHODS[name].deltaWeight) test(`[${name}] dense ΔW reproduces the forward (W0 + ΔW) on the fixture`, async () => {
    const { c, config, site } = await runFixture(name, 'out_in');
    const m = site.outFeatures, n = site.inFeatures, N = FIX.n as number;
    const params: Record<string, Float32Array> = {};
    for (const [k, v] of Object.entries<any>(c.params)) params[k] = Float32Array.from(v.data);
    const dW = METHODS[name].deltaWeight!(site, config, params, Float32Array.from(FIX.W as number[]));
    const y = new Float64Array(N * m);
    for (let r = 0; r < N; r++) for (let i = 0; i < m; i++) {
      let s = FIX.b[i];
      for (let j = 0; j < n; j++) s += FIX.x[r * n + j] * (FIX.W[i * n + j] + dW[i * n + j]);
      y[r * m + i] = s;
    }
    close(y, c.y, 1e-5, `${name} merged y`);
  });
}

test('seeded supports match the reference (SLTrain: its generator; FourierFT: torch.randperm as PEFT)', () => {
  const m = FIX.out, n = FIX.in;
  assert.deepEqual([...sltrainSupport(FIX.site, m, n, sltrain.schema.parse(FIX.cases.sltrain.config))], FIX.cases.sltrain.support);
  const { u, v } = fourierftIndices(m, n, fourierft.schema.parse(FIX.cases.fourierft.config));
  assert.deepEqual([...u].map((uu, k) => uu * n + v[k]), FIX.cases.fourierft.support);
});

test('paramCount equals the METHODS.md formulas and the initialized sizes', () => {
  const rng = new Rng(1);
  for (const [m, n] of [[10, 12], [768, 256], [512, 1536]]) {
    const site: LinearSite = { name: 's', inFeatures: n, outFeatures: m, weightKey: 'w', layout: 'in_out' };
    const W = new Float32Array(m * n);
    const count = (meth: AdapterMethod, cfg: object) => meth.init({ site, config: meth.schema.parse(cfg), rng, baseWeight: W }).reduce((s, p) => s + p.data.length, 0);
    // Hydra: r_par·(m + n) + 2·r_seq·m
    const hc = hydra.schema.parse({});
    assert.equal(hydra.paramCount(site, hc), 4 * (m + n) + 2 * 8 * m);
    assert.equal(count(hydra, {}), hydra.paramCount(site, hc));
    // SLTrain: r·(m + n) + round(δ·m·n)
    const sc = sltrain.schema.parse({});
    assert.equal(sltrain.paramCount(site, sc), 8 * (m + n) + Math.round(0.03 * m * n));
    assert.equal(count(sltrain, {}), sltrain.paramCount(site, sc));
    assert.equal(sltrainNnz(m, n, 0.03), Math.round(0.03 * m * n));
    // FourierFT: n_frequency
    // SMoRA: R·(in + out) + R·in (router)
    const mc = smora.schema.parse({});
    assert.equal(smora.paramCount(site, mc), 64 * (n + m) + 64 * n);
    assert.equal(count(smora, {}), smora.paramCount(site, mc));
    // LaMDA: r² + m·r (S, and B while it trains)
    const lc = lamda.schema.parse({});
    assert.equal(lamda.paramCount(site, lc), 8 * 8 + m * 8);
    if (m * n < 1e6) assert.equal(lamda.init({ site, config: lc, rng, baseWeight: Float32Array.from({ length: m * n }, (_, i) => Math.sin(i)) }).reduce((a, p) => a + p.data.length, 0), lamda.paramCount(site, lc));
    // LoCA: n_frequency coefficients + 2·n_frequency integer locations
    const oc = loca.schema.parse({ n_frequency: 100 });
    assert.equal(loca.paramCount(site, oc), 300);
    assert.equal(count(loca, { n_frequency: 100 }), 300);
    const fc = fourierft.schema.parse({ n_frequency: 100 });
    assert.equal(fourierft.paramCount(site, fc), 100);
    assert.equal(count(fourierft, { n_frequency: 100 }), 100);
  }
});

test('defaults follow METHODS.md / PEFT', () => {
  assert.deepEqual(hydra.schema.parse({}), { r_seq: 8, r_par: 4, init_weights: true });
  const s = sltrain.schema.parse({});
  assert.equal(s.density, 0.03);
  assert.equal(s.r, 8);
  assert.deepEqual(smora.schema.parse({}), { num_ranks: 64, top_k: 8, lora_alpha: 16, bias_update_rate: 1e-3, init_weights: true });
  assert.deepEqual(fourierft.schema.parse({}), { n_frequency: 1000, scaling: 150, random_loc_seed: 777, init_weights: false, ifft2_norm: 'backward', n_frequency_pattern: {} });
});

// ---- on the bundled USE model --------------------------------------------------

let model: EncoderModel;
let data: { ids: number[]; label: number }[];
before(async () => {
  model = await loadUseEncoder();
  data = tinyReviews();
});

const USE_CASES: [string, AdapterMethod, Record<string, unknown>][] = [
  ['hydra', hydra, { r_seq: 4, r_par: 2, init_weights: false }],
  ['sltrain', sltrain, { r: 4, density: 0.01, sparse_init: 'uniform', init_weights: false }],
  ['fourierft', fourierft, { n_frequency: 64, scaling: 3000 }],
  ['smora', smora, { num_ranks: 8, top_k: 2, init_weights: false }],
  ['lamda', lamda, { r: 4, init_weights: false, freeze_fraction: 0.5 }],
  ['loca', loca, { n_frequency: 64, scaling: 5, init_weights: false }],
];
const TARGETS = ['qkv', 'conv2'];

for (const [name, method, cfg] of USE_CASES) {
  test(`[${name}] USE: from init_weights: true, a few training steps change only the method's parameters (and the head)`, async () => {
    const frozen = new Map([...model.weights].map(([k, v]) => [k, Float32Array.from(v.data)]));
    const set = new AdapterSet(method, method.schema.parse({ ...cfg, init_weights: true }), model.sites, model.weights, { targetModules: TARGETS, seed: 3 });
    const init = new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)]));
    const t = new ClassificationTrainer(model, set, 2, { epochs: 2, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
    await t.fit(data, data.slice(0, 2));
    await t.release();
    for (const [k, v] of model.weights) assert.deepEqual(v.data, frozen.get(k), `frozen weight ${k} changed`);
    for (const k of set.params.keys()) assert.ok(k.includes(`.${name}_`), `${k} is not a ${name} parameter`);
    for (const [k, v] of set.params) if (!k.endsWith('loca_locations')) assert.ok(maxAbsDiff(v, init.get(k)!) > 0, `parameter ${k} did not train`);
  });
}

test('[smora] load balancing: β moves toward under-used ranks; the trainer feeds β and updates it from each step\'s load', async () => {
  const beta = new Float32Array(4);
  updateBias(beta, [10, 0, 2, 4], 0.01); // mean 4
  assert.deepEqual([...beta].map((v) => +v.toFixed(3)), [-0.01, 0.01, 0.01, 0]);
  const set = new AdapterSet(smora, smora.schema.parse({ num_ranks: 8, top_k: 2, bias_update_rate: 0.01 }), model.sites, model.weights, { targetModules: ['qkv'], seed: 2 });
  let loads = 0;
  const t = new ClassificationTrainer(model, set, 2, {
    epochs: 1, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16],
    onStep: () => loads++,
  });
  await t.fit(data, data.slice(0, 2));
  await t.release();
  assert.equal(loads, 2);
  for (const site of set.targets) {
    const b = smoraBias(set, site.name, 8);
    assert.ok(b.some((v) => v !== 0), `β of ${site.name} was not updated`);
    assert.ok(b.every((v) => Math.abs(Math.round(v / 0.01) * 0.01 - v) < 1e-6), 'each update is ±u or 0');
  }
  assert.equal(loadOutput('a.b'), 'smora_load.a.b');
});

test('[lamda] A = canonical V_rᵀ of W0 matches torch.linalg.svd; B freezes column by column', async () => {
  const { A } = lamdaFactors(Float32Array.from(FIX.W as number[]), FIX.out, FIX.in, 3);
  close(A, FIX.cases.lamda.A, 1e-5, 'A');
  const c = lamda.schema.parse({ r: 4, freeze_fraction: 0.5 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 10].map((s) => frozenColumns(s, 10, c)), [0, 0, 1, 2, 3, 4, 4]);
  // Training on USE with B frozen halfway: frozen columns end where they froze, S trains throughout.
  const set = new AdapterSet(lamda, c, model.sites, model.weights, { targetModules: ['encoder.layer.0.attention.qkv'], seed: 1 });
  const key = [...set.params.keys()].find((k) => k.endsWith('lamda_B.weight'))!;
  const B0 = Float32Array.from(set.params.get(key)!);
  const t = new ClassificationTrainer(model, set, 2, { epochs: 4, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
  await t.fit(data, data.slice(0, 2));
  await t.release();
  const B = set.params.get(key)!, m = 768;
  const colChanged = (col: number) => { let d = 0; for (let i = 0; i < m; i++) d = Math.max(d, Math.abs(B[i * 4 + col] - B0[i * 4 + col])); return d; };
  // 8 steps, all frozen by step 4; column 3 (smallest σ) froze at step 1, after one step of weight decay only (S = 0 at step 0).
  assert.ok(colChanged(3) < 1e-4 && colChanged(3) < colChanged(0), `column 3 moved ${colChanged(3)}, column 0 ${colChanged(0)}`);
  assert.ok(colChanged(0) > 0, 'the last column to freeze trained before it froze');
  // freeze_fraction 0: B never moves, S trains.
  const set0 = new AdapterSet(lamda, lamda.schema.parse({ r: 4, freeze_fraction: 0 }), model.sites, model.weights, { targetModules: ['encoder.layer.0.attention.qkv'], seed: 1 });
  const Bk = [...set0.params.keys()].find((k) => k.endsWith('lamda_B.weight'))!, Sk = Bk.replace('lamda_B', 'lamda_S');
  const B00 = Float32Array.from(set0.params.get(Bk)!);
  const t0 = new ClassificationTrainer(model, set0, 2, { epochs: 2, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
  await t0.fit(data, data.slice(0, 2));
  await t0.release();
  assert.deepEqual(set0.params.get(Bk), B00);
  assert.ok(set0.params.get(Sk)!.some((v) => v !== 0));
});

test('[loca] location step: each coefficient moves to the free neighbour with the most negative predicted change', async () => {
  // K = 2 at (1,1) and (1,2) in a 3×3 grid; fd rows: Ĝ(u,v), Ĝ(u+1,v), Ĝ(u−1,v), Ĝ(u,v+1), Ĝ(u,v−1)
  const loc = Float32Array.of(1, 1, 1, 2);
  const c = Float32Array.of(1, -1);
  const fd = [0, 0, /*u+1*/ -2, 5, /*u-1*/ -1, 0, /*v+1 (k0's is taken by k1)*/ -9, 0, /*v-1*/ 0, -3];
  assert.equal(moveLocations(loc, c, fd, 3, 3, 1), 2);
  assert.deepEqual([...loc], [2, 2, 1, 2]); // u = [2, 2], v = [1, 2]: k0 → (2,1): Δ = 1·(−2 − 0) beats −1 and (1,2) is taken; k1 → (2,2): Δ = −1·(5 − 0) = −5
  // In training: locations move only by the hook, are integers, and stay distinct.
  const set = new AdapterSet(loca, loca.schema.parse({ n_frequency: 32, scaling: 5, location_fraction: 1, init_weights: false }), model.sites, model.weights, { targetModules: ['encoder.layer.0.attention.qkv'], seed: 1 });
  const key = [...set.params.keys()].find((k) => k.endsWith('loca_locations'))!;
  const before = Float32Array.from(set.params.get(key)!);
  const t = new ClassificationTrainer(model, set, 2, { epochs: 2, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
  await t.fit(data, data.slice(0, 2));
  await t.release();
  const after = set.params.get(key)!;
  assert.ok(after.every((v) => Number.isInteger(v)), 'locations stay integers');
  assert.ok(maxAbsDiff(after, before) > 0, 'some location moved');
  const K = 32, cells = new Set<number>();
  for (let k = 0; k < K; k++) cells.add(after[k] * 256 + after[K + k]);
  assert.equal(cells.size, K, 'locations stay distinct');
});
