// IncreLoRA (src/adapters/increlora/) against a PyTorch transcription of the
// official training step (tools/reference/increlora.py → test/fixtures/increlora.json):
// ten steps of two modules — forward, gradients and the orthogonality term at
// step 0 (1e-5); after every step the component values (reserves included), the
// module scores' EMAs, ranknum and the total, through the reserves at step 0, a
// rank added at step 4 and step 6 (the target reached: reserves zeroed), each new
// parameter group on its own warmup/decay (Multi_LambdaLR).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph, type Value } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { adapterFeeds } from '../src/adapters/feeds.ts';
import { adapterLossTerm } from '../src/adapters/hooks.ts';
import { increlora, INCRELORA_KEYS, type IncreloraState } from '../src/adapters/increlora/index.ts';
import { groupLambda } from '../src/adapters/increlora/config.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';

const F = JSON.parse(fs.readFileSync(new URL('./fixtures/increlora.json', import.meta.url), 'utf8'));
const C = F.config;

function close(got: ArrayLike<number>, want: number[], tol: number, what: string) {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * Math.max(1, Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

test('IncreLoRA: ten training steps equal the official transcription (forward/grads/orth 1e-5; components 1e-6, scores 1e-5, ranknum and total exactly after every step)', async () => {
  const sites: LinearSite[] = F.modules.map((m: any) => ({ name: m.name, inFeatures: m.in, outFeatures: m.out, weightKey: `${m.name}.weight`, layout: 'out_in' }));
  const weights: WeightMap = new Map(F.modules.map((m: any) => [`${m.name}.weight`, { shape: [m.out, m.in], data: Float32Array.from(m.W) }]));
  const config = increlora.schema.parse({
    init_r: C.init_r, target_total_rank: C.target_total, incre_rank_num: C.add_r, top_h: C.top_h, init_warmup: C.init_warmup, incre_interval: C.interval,
    lora_alpha: C.lora_alpha, reg_orth_coef: C.orth, weight_decay: C.wd, adam_epsilon: C.eps, beta1: C.beta1, beta2: C.beta2, max_rank: 4,
  });
  const set = new AdapterSet(increlora, config, sites, weights, { targetModules: 'all-linear' });
  const st = set.state as IncreloraState;
  const R = 4;
  const key = (m: string, k: string) => `base_model.model.${m}.${k}`;
  for (const m of F.modules) {
    set.params.get(key(m.name, INCRELORA_KEYS.A))!.fill(0).set(m.A);
    const B = set.params.get(key(m.name, INCRELORA_KEYS.B))!.fill(0);
    m.B.forEach((v: number, i: number) => (B[i * R] = v));
    set.params.get(key(m.name, INCRELORA_KEYS.E))!.fill(0).set(m.E);
  }
  st.reserveInit = (module, step, j) => {
    const r = F.reserves.find((x: any) => x.module === module && x.step === step && x.j === j);
    assert.ok(r, `no reference reserve for ${module} at step ${step}`);
    return { a: r.a, b: r.b };
  };
  const N = F.batches[0][0].x.length / F.modules[0].in;
  const g = new Graph('increlora');
  const lin = set.linear({ training: true });
  let total: Value | null = null;
  sites.forEach((site, i) => {
    const x = g.input(`x${i}`, 'float32', [N, site.inFeatures]);
    const y = lin(site, x, g.weight(site.weightKey, weights.get(site.weightKey)!.data, [site.outFeatures, site.inFeatures]));
    g.output(`y${i}`, y);
    const t = op.reduceSum(op.mul(y, g.input(`R${i}`, 'float32', [N, site.outFeatures])), [0, 1], false);
    total = total ? op.add(total, t) : t;
  });
  const orth = adapterLossTerm(set, g)!;
  g.output('orth', orth);
  const loss = op.add(total!, orth);
  g.output('loss', loss);
  const params = g.params();
  grad(loss, params).forEach((gr, i) => g.output(`grad.${params[i].leaf!.name}`, gr));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  increlora.hooks!.startRun!({ state: st, config: set.config, sites: set.hookSites() });
  for (let s = 0; s < C.steps; s++) {
    const want = F.trace[s];
    const feeds: Record<string, any> = adapterFeeds(set, { training: true, at: { step: s, seed: 0 } });
    sites.forEach((site, i) => {
      feeds[`x${i}`] = { data: Float32Array.from(F.batches[s][i].x), dims: [N, site.inFeatures] };
      feeds[`R${i}`] = { data: Float32Array.from(F.batches[s][i].R), dims: [N, site.outFeatures] };
    });
    const out = await cg.run(feeds);
    assert.ok(Math.abs(Number(out.orth.data[0]) - want.orth) < 1e-5 * Math.max(1, want.orth), `step ${s}: orth ${out.orth.data[0]} vs ${want.orth}`);
    assert.ok(Math.abs(Number(out.loss.data[0]) - want.loss) < 1e-5 * Math.max(1, Math.abs(want.loss)), `step ${s}: loss ${out.loss.data[0]} vs ${want.loss}`);
    if (s === 0) {
      F.modules.forEach((m: any, i: number) => {
        close(out[`y${i}`].data as Float32Array, want.y[i], 1e-5, `y ${m.name}`);
        close((out[`grad.${key(m.name, INCRELORA_KEYS.A)}`].data as Float32Array).subarray(0, m.in), want.grads[i].A, 1e-5, `∂L/∂A0 ${m.name}`);
        const gB = out[`grad.${key(m.name, INCRELORA_KEYS.B)}`].data as Float32Array;
        close(Array.from({ length: m.out }, (_, r) => gB[r * R]), want.grads[i].B, 1e-5, `∂L/∂B0 ${m.name}`);
        close((out[`grad.${key(m.name, INCRELORA_KEYS.E)}`].data as Float32Array).subarray(0, 1), want.grads[i].E, 1e-5, `∂L/∂E0 ${m.name}`);
      });
    }
    const grads = new Map([...set.params.keys()].map((k) => [k, out[`grad.${k}`].data as Float32Array]));
    increlora.hooks!.optimizerStep!({ step: s, totalSteps: C.steps, lr: 0, baseLr: C.lr, warmupSteps: C.warmup, seed: 0, params: set.params, grads, outputs: out, config: set.config, sites: set.hookSites(), state: st });
    assert.equal(st.total, want.total, `step ${s}: total rank`);
    F.modules.forEach((m: any, i: number) => {
      const a = want.after[i], info = st.modules.get(m.name)!;
      assert.equal(info.comps.length, a.created, `step ${s}: components of ${m.name}`);
      assert.equal(info.ranknum, a.ranknum, `step ${s}: ranknum of ${m.name}`);
      const k = a.created;
      const A = set.params.get(key(m.name, INCRELORA_KEYS.A))!, B = set.params.get(key(m.name, INCRELORA_KEYS.B))!, E = set.params.get(key(m.name, INCRELORA_KEYS.E))!;
      close(A.subarray(0, k * m.in), a.A, 1e-6, `step ${s}: A ${m.name}`);
      close(Array.from({ length: m.out * k }, (_, j) => B[Math.floor(j / k) * R + (j % k)]), a.B, 1e-6, `step ${s}: B ${m.name}`);
      close(E.subarray(0, k), a.E, 1e-6, `step ${s}: E ${m.name}`);
      if (want.ema[i]) {
        const e = st.ema.get(m.name)!;
        close([e.ipt, e.unc], want.ema[i], 1e-5, `step ${s}: EMA ${m.name}`);
      }
    });
  }
  await cg.release();
  assert.ok(st.done, 'the target was reached');
  // The reserves were zeroed when the target was reached; factors keep the active components only.
  const f = set.factorsFor(sites[0]);
  assert.equal(f.r, 3);
});

test('IncreLoRA group learning rates follow Multi_LambdaLR: a group made during step t restarts its warmup at t + 1 and decays over the steps left', () => {
  const lrs = F.trace.map((t: any) => t.lrs);
  // Groups: the first (−1), the reserves (step 0), the increases (steps 4 and 6); lrs[s] are the rates after step s, used by step s + 1.
  const created = [-1, 0, 4, 6];
  lrs.forEach((row: number[], s: number) => row.forEach((lr, gIdx) => {
    const got = C.lr * groupLambda(s + 1, created[gIdx], C.warmup, C.steps);
    assert.ok(Math.abs(got - lr) < 1e-15, `group ${gIdx} at step ${s + 1}: ${got} vs ${lr}`);
  }));
});
