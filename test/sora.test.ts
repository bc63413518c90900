// SoRA (src/adapters/sora/) against the PyTorch transcription of its official
// step (tools/reference/sora.py → test/fixtures/sora.json): the gated forward,
// the gradients with the L1 term over all modules, SparseAdamW's gate step with
// the shrink-then-zero threshold (and the 'soft' option), the threshold at
// exactly ξ and 2ξ, the ξ schedules; then pruning: the plain LoRA a SoRA adapter
// becomes gives the gated outputs and loads as PEFT's LoRA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Graph, type Value } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { adapterLossTerm } from '../src/adapters/hooks.ts';
import { sora, SORA_KEYS } from '../src/adapters/sora/index.ts';
import { numpyLinspace, xiSchedule } from '../src/adapters/sora/config.ts';
import { sparseAdamWStep } from '../src/adapters/sora/sparse_adamw.ts';
import { thresholdGates } from '../src/adapters/sora/threshold.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { loadPeftAdapter, readAdapter } from '../src/peft/adapter_files.ts';
import { saveAdapterAsLora } from '../src/peft/as_lora.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/sora.json', import.meta.url), 'utf8'));

/** max over i of |got − want| / max(1, |want|). */
function worst(got: ArrayLike<number>, want: number[]): number {
  assert.equal(got.length, want.length);
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  return w;
}

test('SoRA forward, gradients of A, B and the gates, and the L1 term λ·Σ|g|/N_g over all modules equal the PyTorch transcription (1e-5)', async () => {
  const F = FIX.forward;
  const sites: LinearSite[] = F.modules.map((m: any) => ({ name: m.name, inFeatures: m.in, outFeatures: m.out, weightKey: `${m.name}.weight`, layout: 'out_in' }));
  const weights: WeightMap = new Map(F.modules.map((m: any) => [`${m.name}.weight`, { shape: [m.out, m.in], data: Float32Array.from(m.W) }]));
  const set = new AdapterSet(sora, sora.schema.parse({ r: F.r, lora_alpha: F.lora_alpha, sparse_lambda: F.sparse_lambda }), sites, weights, { targetModules: 'all-linear', seed: 0 });
  const g = new Graph('sora');
  const lin = set.linear({ training: true });
  let total: Value | null = null;
  const feeds: Record<string, any> = {};
  F.modules.forEach((m: any, i: number) => {
    for (const [sfx, v] of [[SORA_KEYS.A, m.A], [SORA_KEYS.B, m.B], [SORA_KEYS.gate, m.gate]] as const) set.params.get(`base_model.model.${m.name}.${sfx}`)!.set(v);
    const x = g.input(`x${i}`, 'float32', [F.N, m.in]);
    feeds[`x${i}`] = { data: Float32Array.from(m.x), dims: [F.N, m.in] };
    const y = lin(sites[i], x, g.weight(`${m.name}.weight`, Float32Array.from(m.W), [m.out, m.in]));
    g.output(`y${i}`, y);
    const term = op.reduceSum(op.mul(y, g.weight(`R${i}`, Float32Array.from(m.R), [F.N, m.out])), [0, 1], false);
    total = total ? op.add(total, term) : term;
  });
  const l1 = adapterLossTerm(set, g)!;
  g.output('term', l1);
  g.output('loss', op.add(total!, l1));
  const keys = [...set.params.keys()];
  grad(op.add(total!, l1), keys.map((k) => g.leaf(k)!)).forEach((gr, i) => g.output(`grad.${keys[i]}`, gr));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  for (const [k, v] of set.params) feeds[k] = { data: v, dims: set.shapes.get(k)! };
  const out = await cg.run(feeds);
  await cg.release();
  assert.ok(Math.abs(Number(out.term.data[0]) - F.term) <= 1e-5 * Math.abs(F.term), `L1 term ${out.term.data[0]} vs ${F.term}`);
  assert.ok(Math.abs(Number(out.loss.data[0]) - F.loss) <= 1e-5 * Math.max(1, Math.abs(F.loss)), `loss ${out.loss.data[0]} vs ${F.loss}`);
  F.modules.forEach((m: any, i: number) => {
    assert.ok(worst(out[`y${i}`].data as Float32Array, m.y) < 1e-5, `y of ${m.name}`);
    for (const sfx of Object.values(SORA_KEYS)) {
      const w = worst(out[`grad.base_model.model.${m.name}.${sfx}`].data as Float32Array, m.grads[sfx]);
      assert.ok(w < 1e-5, `∂L/∂${sfx} of ${m.name}: ${w.toExponential(2)}`);
    }
  });
  // A per-module mean (N_g of one module) would be a different term: the fixture's is the global one.
  let sumAbs = 0;
  for (const m of F.modules) for (const v of m.gate) sumAbs += Math.abs(v);
  assert.ok(Math.abs(F.term - (F.sparse_lambda * sumAbs) / (F.r * F.modules.length)) < 1e-12);
});

test('SoRA gate step = SparseAdamW.step + threshold (official and soft), three steps from a given Adam state, float64 (1e-6)', () => {
  for (const c of FIX.sparse_adamw) {
    const p = Float64Array.from(c.p0), m = Float64Array.from(c.m0), v = Float64Array.from(c.v0);
    let t = c.t0;
    c.grads.forEach((g: number[], k: number) => {
      sparseAdamWStep(p, g, m, v, ++t, { lr: c.lr, beta1: 0.9, beta2: 0.999, eps: 1e-6, weightDecay: 0, xi: c.xi, threshold: c.threshold });
      const want = c.after[k];
      assert.equal(t, want.t);
      for (const [name, got, ref] of [['p', p, want.p], ['m', m, want.m], ['v', v, want.v]] as const) {
        for (let i = 0; i < ref.length; i++) {
          const tol = 1e-6 * Math.abs(ref[i]);
          assert.ok(Math.abs(got[i] - ref[i]) <= tol, `${c.threshold} step ${k + 1} ${name}[${i}]: ${got[i]} vs ${ref[i]}`);
          if (name === 'p') assert.equal(got[i] === 0, ref[i] === 0, `${c.threshold} step ${k + 1}: gate ${i} zeroed in one and not the other`);
        }
      }
    });
    assert.ok(p.some((x) => x === 0) && p.some((x) => x !== 0), 'the steps close some gates and keep others');
  }
});

test('SoRA through the loop hook: the float32 gate update with sparse_lr and the schedule multiplier equals the float64 transcription (1e-6)', () => {
  const c = FIX.sparse_adamw[0];
  const site: LinearSite = { name: 'm', inFeatures: 1, outFeatures: 1, weightKey: 'm.weight', layout: 'out_in' };
  const key = 'base_model.model.m.lora_gate';
  const config = sora.schema.parse({ r: c.p0.length, sparse_lambda_2: c.xi, sparse_lr: c.lr });
  const state = sora.createState!({ config, targets: [site] });
  state.opt.set(key, { t: c.t0, m: Float32Array.from(c.m0), v: Float32Array.from(c.v0) });
  const params = new Map([[key, Float32Array.from(c.p0)]]);
  const sites = [{ site, config, keys: { lora_gate: key } }];
  // Base lr 1e-3 at a schedule multiplier of 0.5: the gates step at sparse_lr × 0.5 — so feed lr·2 as sparse_lr to land on the fixture's lr.
  config.sparse_lr = 2 * c.lr;
  c.grads.forEach((g: number[], k: number) => {
    sora.hooks!.optimizerStep!({ step: k, totalSteps: 10, lr: 5e-4, baseLr: 1e-3, warmupSteps: 0, seed: 0, params, grads: new Map([[key, Float32Array.from(g)]]), outputs: {}, config, sites, state });
    const want = c.after[k].p;
    const got = params.get(key)!;
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-6 * Math.max(Math.abs(want[i]), 1e-3), `step ${k + 1} gate ${i}: ${got[i]} vs ${want[i]}`);
  });
});

test('SoRA threshold at ±0.5ξ, ±ξ, ±1.5ξ, ±2ξ, ±3ξ: official shrink-then-zero and soft, exactly as PyTorch', () => {
  for (const e of FIX.threshold_edges) {
    for (const kind of ['official', 'soft'] as const) {
      const p = Float64Array.from(e.p);
      thresholdGates(p, e.xi, kind);
      assert.deepEqual(Array.from(p), e[kind], `${kind} ξ=${e.xi}`);
    }
    // The official map at the edges, as the method doc states it: ξ stays, (ξ, 2ξ) closes, 2ξ → ξ, 3ξ → 2ξ.
    const off = e.official;
    assert.equal(off[1], e.xi);
    assert.equal(off[2], 0);
    assert.equal(off[3], 2 * e.xi - e.xi);
    assert.equal(off[0], 0);
  }
});

test('SoRA ξ schedules (linear, log_linear, exp_linear) equal numpy\'s _build_lambda_list', () => {
  for (const s of FIX.schedules) {
    const got = xiSchedule(s.shape, s.xi0, s.xi_max, s.num);
    assert.equal(got.length, s.values.length);
    got.forEach((x, i) => assert.ok(Math.abs(x - s.values[i]) <= 1e-15 * Math.max(1e-12, Math.abs(s.values[i])) + 1e-20, `${s.shape}[${i}]: ${x} vs ${s.values[i]}`));
  }
  assert.deepEqual(numpyLinspace(0, 1, 1), [0]);
  assert.throws(() => xiSchedule('exp_linear', 0, 1e-3, 4), /positive start/);
});

test('SoRA pruned: the rank-nnz LoRA gives the gated outputs (1e-5), ΔW = s·B·diag(g)·A, and it loads as PEFT\'s LoRA with rank_pattern (a closed module through exclude_modules)', async () => {
  const model = await loadUseEncoder();
  const targets = ['encoder.layer.0.attention.qkv', 'encoder.layer.0.ffn.conv2', 'encoder.layer.1.ffn.conv1'];
  const set = new AdapterSet(sora, sora.schema.parse({ r: 4, init_weights: false }), model.sites, model.weights, { targetModules: targets, seed: 7 });
  const gates = [[0.7, 0, -1.2, 0], [0, 0, 0, 0], [0.3, -0.4, 0.5, 2]];
  set.targets.forEach((s, i) => set.params.get(`base_model.model.${s.name}.lora_gate`)!.set(gates[i]));
  // ΔW against a hand computation of s·B·diag(g)·A.
  const s0 = set.targets[0], pr = set.siteParams(s0);
  const dW = set.deltaFor(s0, model.weights.get(s0.weightKey)!.data);
  const n = s0.inFeatures, r = 4, sc = 16 / 4;
  let err = 0;
  for (let i = 0; i < s0.outFeatures; i += 17) for (let j = 0; j < n; j += 13) {
    let v = 0;
    for (let k = 0; k < r; k++) v += pr['lora_B.weight'][i * r + k] * gates[0][k] * pr['lora_A.weight'][k * n + j];
    err = Math.max(err, Math.abs(dW[i * n + j] - sc * v));
  }
  assert.ok(err < 1e-6, `ΔW vs s·B·diag(g)·A: ${err}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-sora-lora-'));
  const res = saveAdapterAsLora(dir, set, { baseModel: 'use' });
  assert.deepEqual(res.ranks, { [targets[0]]: 2, [targets[1]]: 0, [targets[2]]: 4 });
  const file = readAdapter(dir);
  assert.equal(file.config.peft_type, 'LORA');
  assert.deepEqual(file.config.rank_pattern, { [targets[0]]: 2, [targets[2]]: 4 });
  assert.deepEqual(file.config.alpha_pattern, { [targets[0]]: 8, [targets[2]]: 16 });
  assert.deepEqual(file.config.exclude_modules, [targets[1]]);
  assert.deepEqual(file.tensors.get(`base_model.model.${targets[0]}.lora_A.weight`)!.shape, [2, n]);
  const loaded = loadPeftAdapter(model, dir, { warn: () => {} });
  assert.equal(loaded.set.method.name, 'lora');
  assert.deepEqual(loaded.set.targets.map((t) => t.name), [targets[0], targets[2]]);
  assert.equal(loaded.set.trainableCount(), res.params);
  const tok = UseTokenizer.fromVocabFile();
  const batch = padBatch(['A wonderful, moving film.', 'Terrible plot; I walked out.', 'Loved it!'].map((t) => tok.encode(t)));
  const runWith = async (s: AdapterSet | null) => {
    const pm = new PeftModel(model, { threads: 1 });
    if (s) pm.addAdapter('x', s);
    const o = (await pm.run(batch)).data as Float32Array;
    await pm.release();
    return o;
  };
  const [gated, pruned, base] = [await runWith(set), await runWith(loaded.set), await runWith(null)];
  assert.ok(maxAbsDiff(gated, base) > 1e-3, 'the gated adapter changes outputs');
  assert.ok(maxAbsDiff(gated, pruned) < 1e-5, `pruned LoRA vs gated SoRA: ${maxAbsDiff(gated, pruned)}`);
});
