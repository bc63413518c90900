// Bayesian-LoRA-style gates (src/adapters/bayesian_lora/: paper-derived and
// unverified, lorakit's own formulation) against a PyTorch transcription of
// the same equations (tools/reference/bayesian_lora.py →
// test/fixtures/bayesian_lora.json): the Bayesian-Bits quantizer for fixed gates,
// hard-concrete samples for injected u and the closed-form P(z ≠ 0), the
// BOP-weighted penalty, and the forward/gradients of a gated, quantized module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { adapterFeeds } from '../src/adapters/feeds.ts';
import { adapterLossTerm } from '../src/adapters/hooks.ts';
import { bayesianLora, BLORA_KEYS, type BayesianLoraState } from '../src/adapters/bayesian_lora/index.ts';
import { hardConcreteMean, hardConcreteSample, probOn, quantize } from '../src/adapters/bayesian_lora/config.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';

const F = JSON.parse(fs.readFileSync(new URL('./fixtures/bayesian_lora.json', import.meta.url), 'utf8'));

function close(got: ArrayLike<number>, want: number[], tol: number, what: string) {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

test('Bayesian-Bits quantizer for fixed gates and the matrix\'s range equals the transcription (float64, 1e-12)', () => {
  for (const c of F.quant.cases) close(quantize(F.quant.x, c.gates), c.xq, 1e-12, `gates ${c.gates}`);
  // All gates on reconstructs x to within the 32-bit step; all off is the 2-bit grid (4 levels).
  const levels = new Set(Array.from(quantize(F.quant.x, [0, 0, 0, 0])).map((v) => v.toFixed(12)));
  assert.ok(levels.size <= 4, `2-bit levels: ${levels.size}`);
});

test('hard-concrete samples for injected u, the deterministic gate and P(z ≠ 0) equal the transcription; P(z ≠ 0) is the fraction of non-zero samples', () => {
  const H = F.hard_concrete;
  H.log_alpha.forEach((a: number, i: number) => {
    close(H.u.map((u: number) => hardConcreteSample(a, u)), H.samples[i], 1e-12, `samples at log α ${a}`);
    assert.ok(Math.abs(hardConcreteMean(a) - H.mean[i]) < 1e-12);
    assert.ok(Math.abs(probOn(a) - H.p_on[i]) < 1e-12, `P(on) at log α ${a}`);
    let nz = 0;
    const K = 200000;
    for (let k = 0; k < K; k++) if (hardConcreteSample(a, (k + 0.5) / K) > 0) nz++;
    assert.ok(Math.abs(nz / K - probOn(a)) < 1e-4, `fraction ${nz / K} vs closed form ${probOn(a)}`);
    assert.ok(Math.abs(H.fraction_nonzero[i] - H.p_on[i]) < 1e-4, 'the reference agrees with itself');
  });
});

test('the BOP-weighted penalty equals the transcription (1e-6)', async () => {
  const P = F.penalty;
  const sites: LinearSite[] = P.modules.map((m: any, i: number) => ({ name: `m${i}`, inFeatures: m.in, outFeatures: m.out, weightKey: `m${i}.weight`, layout: 'out_in' }));
  const weights: WeightMap = new Map(P.modules.map((m: any, i: number) => [`m${i}.weight`, { shape: [m.out, m.in], data: new Float32Array(m.out * m.in) }]));
  const set = new AdapterSet(bayesianLora, bayesianLora.schema.parse({ r: P.modules[0].r, bop_lambda: P.bop_lambda }), sites, weights, { targetModules: 'all-linear' });
  P.modules.forEach((m: any, i: number) => {
    set.params.get(`base_model.model.m${i}.${BLORA_KEYS.rank}`)!.set(m.rank_log_alpha);
    set.params.get(`base_model.model.m${i}.${BLORA_KEYS.bits}`)!.set(m.bits_log_alpha);
  });
  const g = new Graph('penalty');
  const lin = set.linear({ training: false });
  sites.forEach((s, i) => lin(s, g.input(`x${i}`, 'float32', [1, s.inFeatures]), g.weight(s.weightKey, weights.get(s.weightKey)!.data, [s.outFeatures, s.inFeatures])));
  g.output('pen', adapterLossTerm(set, g)!);
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const out = await cg.run(adapterFeeds(set, { training: false }));
  await cg.release();
  const got = Number(out.pen.data[0]);
  assert.ok(Math.abs(got - P.value) < 1e-6 * P.value, `penalty ${got} vs ${P.value}`);
});

test('a gated, quantized module with sampled gates (u given): forward and gradients of A, B, λ and both gate vectors equal the transcription (1e-5)', async () => {
  const D = F.forward;
  const site: LinearSite = { name: 'm', inFeatures: D.in, outFeatures: D.out, weightKey: 'm.weight', layout: 'out_in' };
  const weights: WeightMap = new Map([['m.weight', { shape: [D.out, D.in], data: Float32Array.from(D.W) }]]);
  const set = new AdapterSet(bayesianLora, bayesianLora.schema.parse({ r: D.r, lora_alpha: D.lora_alpha }), [site], weights, { targetModules: 'all-linear' });
  const key = (k: string) => `base_model.model.m.${k}`;
  const given: Record<string, number[]> = { [BLORA_KEYS.A]: D.A, [BLORA_KEYS.B]: D.B, [BLORA_KEYS.E]: D.E, [BLORA_KEYS.rank]: D.rank_log_alpha, [BLORA_KEYS.bits]: D.bits_log_alpha };
  for (const [k, v] of Object.entries(given)) set.params.get(key(k))!.set(v);
  (set.state as BayesianLoraState).draw = () => Float32Array.from(D.u);
  const g = new Graph('blora');
  const x = g.input('x', 'float32', [D.N, D.in]);
  const y = set.linear({ training: true })(site, x, g.weight('m.weight', weights.get('m.weight')!.data, [D.out, D.in]));
  const loss = op.reduceSum(op.mul(y, g.weight('R', Float32Array.from(D.R), [D.N, D.out])), [0, 1], false);
  g.output('y', y);
  const keys = Object.keys(given);
  grad(loss, keys.map((k) => g.leaf(key(k))!)).forEach((gr, i) => g.output(`g.${keys[i]}`, gr));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const out = await cg.run({ x: { data: Float32Array.from(D.x), dims: [D.N, D.in] }, ...adapterFeeds(set, { training: true, at: { step: 0, seed: 0 } }) });
  await cg.release();
  close(out.y.data as Float32Array, D.y, 1e-5, 'y');
  for (const k of keys) close(out[`g.${k}`].data as Float32Array, D.grads[k], 1e-5, `∂L/∂${k}`);
});
