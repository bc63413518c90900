// DiffoRA-style selection (src/adapters/diffora/, lorakit's own unverified
// reading) against a PyTorch transcription of the same equations
// (tools/reference/diffora.py → test/fixtures/diffora.json): the gated forward
// and gradients (1e-5), one alternating pair on injected batches (weights by
// AdamW, then only the gates by Adam; 1e-6), the discretization that folds σ(a)
// into the kept B and drops the others, top-ρ on fixed gates with ties.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph, type Value } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { adapterFeeds } from '../src/adapters/feeds.ts';
import { ownedParams } from '../src/adapters/hooks.ts';
import { diffora, DIFFORA_KEYS } from '../src/adapters/diffora/index.ts';
import { selectTopRho } from '../src/adapters/diffora/config.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';
import { AdamW } from '../src/optim/adamw.ts';

const F = JSON.parse(fs.readFileSync(new URL('./fixtures/diffora.json', import.meta.url), 'utf8'));

function close(got: ArrayLike<number>, want: number[], tol: number, what: string) {
  assert.equal(got.length, want.length, what);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

test('DiffoRA-style: gated forward/gradients (1e-5), an alternating weights-then-gates pair (1e-6) and the discretization equal the PyTorch transcription', async () => {
  const sites: LinearSite[] = F.modules.map((m: any) => ({ name: m.name, inFeatures: m.in, outFeatures: m.out, weightKey: `${m.name}.weight`, layout: 'out_in' }));
  const weights: WeightMap = new Map(F.modules.map((m: any) => [`${m.name}.weight`, { shape: [m.out, m.in], data: Float32Array.from(m.W) }]));
  // 4 steps, search_fraction 0.5: steps 0 (weights) and 1 (gates) search, the discretization after step 1.
  const config = diffora.schema.parse({ r: F.r, lora_alpha: F.lora_alpha, rho: 1 / 3, search_fraction: 0.5 });
  const set = new AdapterSet(diffora, config, sites, weights, { targetModules: 'all-linear' });
  const key = (m: string, k: string) => `base_model.model.${m}.${k}`;
  for (const m of F.modules) {
    set.params.get(key(m.name, DIFFORA_KEYS.A))!.set(m.A);
    set.params.get(key(m.name, DIFFORA_KEYS.B))!.set(m.B);
    set.params.get(key(m.name, DIFFORA_KEYS.gate))!.set(m.a);
  }
  const g = new Graph('diffora');
  const lin = set.linear({ training: true });
  let total: Value | null = null;
  sites.forEach((s, i) => {
    const x = g.input(`x${i}`, 'float32', [F.N, s.inFeatures]);
    const y = lin(s, x, g.weight(s.weightKey, weights.get(s.weightKey)!.data, [s.outFeatures, s.inFeatures]));
    g.output(`y${i}`, y);
    const t = op.reduceSum(op.mul(y, g.input(`R${i}`, 'float32', [F.N, s.outFeatures])), [0, 1], false);
    total = total ? op.add(total, t) : t;
  });
  g.output('loss', total!);
  const keys = [...set.params.keys()];
  grad(total!, keys.map((k) => g.leaf(k)!)).forEach((gr, i) => g.output(`grad.${keys[i]}`, gr));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const hooks = diffora.hooks!;
  const owned = ownedParams(set);
  const shared = new Map([...set.params].filter(([k]) => !owned.has(k)));
  const opt = new AdamW(shared, { lr: 1e-2, weightDecay: 0.01 });
  hooks.startRun!({ state: set.state as any, config, sites: set.hookSites() });
  for (const [s, want] of F.steps.entries()) {
    const feeds: Record<string, any> = adapterFeeds(set, { training: true, at: { step: s, seed: 0 } });
    sites.forEach((site, i) => {
      feeds[`x${i}`] = { data: Float32Array.from(F.batches[s][i].x), dims: [F.N, site.inFeatures] };
      feeds[`R${i}`] = { data: Float32Array.from(F.batches[s][i].R), dims: [F.N, site.outFeatures] };
    });
    const out = await cg.run(feeds);
    assert.ok(Math.abs(Number(out.loss.data[0]) - want.loss) < 1e-5 * Math.max(1, Math.abs(want.loss)), `step ${s}: loss`);
    F.modules.forEach((m: any, i: number) => {
      close(out[`y${i}`].data as Float32Array, want.y[i], 1e-5, `step ${s}: y ${m.name}`);
      for (const [sfx, k] of [['A', DIFFORA_KEYS.A], ['B', DIFFORA_KEYS.B], ['a', DIFFORA_KEYS.gate]] as const) close(out[`grad.${key(m.name, k)}`].data as Float32Array, want.grads[i][sfx], 1e-5, `step ${s}: ∂L/∂${sfx} ${m.name}`);
    });
    const grads = new Map(keys.map((k) => [k, Float32Array.from(out[`grad.${k}`].data as Float32Array)]));
    const ctx = { step: s, totalSteps: 4, lr: 1e-2, baseLr: 1e-2, warmupSteps: 0, seed: 0, params: set.params, grads, outputs: out, config, sites: set.hookSites(), state: set.state as any };
    hooks.beforeStep!(ctx);
    opt.step(new Map([...grads].filter(([k]) => !owned.has(k))), 1e-2);
    hooks.optimizerStep!(ctx);
    if (s === 0) F.modules.forEach((m: any, i: number) => {
      for (const [sfx, k] of [['A', DIFFORA_KEYS.A], ['B', DIFFORA_KEYS.B], ['a', DIFFORA_KEYS.gate]] as const) close(set.params.get(key(m.name, k))!, want.after[i][sfx], 1e-6, `after step 0: ${sfx} ${m.name}`);
    });
    if (s === 1) F.modules.forEach((m: any, i: number) => close(set.params.get(key(m.name, DIFFORA_KEYS.gate))!, want.after[i].a, 1e-6, `after step 1: a ${m.name}`));
    hooks.afterStep!({ ...ctx, step: s + 1 });
  }
  // After the discretization: the fixture's kept module with σ(a) folded into B, the others dropped; gates fixed.
  F.modules.forEach((m: any, i: number) => {
    close(set.params.get(key(m.name, DIFFORA_KEYS.A))!, F.final[i].A, 1e-6, `final A ${m.name}`);
    close(set.params.get(key(m.name, DIFFORA_KEYS.B))!, F.final[i].B, 1e-6, `final B ${m.name}`);
    assert.equal(set.factorsFor(sites[i]).r, F.final[i].keep ? F.r : 0);
  });
  await cg.release();
});

test('DiffoRA-style top-ρ selection on fixed gates, ties to the earlier module, equals the transcription', () => {
  for (const t of F.ties) assert.deepEqual(selectTopRho(t.gammas, t.rho), t.keep, JSON.stringify(t));
});
