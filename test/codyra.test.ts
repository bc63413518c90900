// CoDyRA (src/adapters/codyra/) against the PyTorch transcription of its
// official training step (tools/reference/codyra.py → test/fixtures/codyra.json):
// the κ schedule (T = 500: first κ = λ[1] at t = 250, pruning from t = 251,
// κ_max from t = 490), two full iterations (forward and gradients without a
// scale, CoDyRA's AdamW with β2 0.9999, then the threshold), and increment_task's
// merge of the open ranks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { codyra, CODYRA_KEYS } from '../src/adapters/codyra/index.ts';
import { kappaAt } from '../src/adapters/codyra/config.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/codyra.json', import.meta.url), 'utf8'));

function worst(got: ArrayLike<number>, want: number[]): number {
  assert.equal(got.length, want.length);
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  return w;
}

test('CoDyRA κ(t) equals the official loop exactly (T = 500 runner values; T = 37)', () => {
  for (const s of FIX.schedules) {
    const c = { kappa_max: s.kappa_max, lambda_num: s.lambda_num, dense_ratio: s.dense_ratio };
    s.trace.forEach((want: { kappa: number; prune: boolean }, t: number) => assert.deepEqual(kappaAt(t, s.T, c), want, `T ${s.T}, t ${t}`));
  }
  // The runner's schedule in words (the method doc's check): first κ = λ[1] at t = 250, pruning from t = 251, κ_max by t = 495.
  const c = { kappa_max: 5e-3, lambda_num: 50, dense_ratio: 0.5 };
  assert.deepEqual(kappaAt(249, 500, c), { kappa: 0, prune: false });
  assert.equal(kappaAt(250, 500, c).kappa, 5e-3 / 49);
  assert.equal(kappaAt(250, 500, c).prune, false);
  assert.equal(kappaAt(251, 500, c).prune, true);
  assert.equal(kappaAt(495, 500, c).kappa, 5e-3);
  assert.ok(kappaAt(489, 500, c).kappa < 5e-3 && kappaAt(490, 500, c).kappa === 5e-3);
});

test('CoDyRA: two full iterations (unscaled forward and gradients 1e-5; AdamW β2 0.9999 + threshold 1e-6) equal the transcription', async () => {
  const S = FIX.step;
  const site: LinearSite = { name: 'm', inFeatures: S.in, outFeatures: S.out, weightKey: 'm.weight', layout: 'out_in' };
  const weights: WeightMap = new Map([['m.weight', { shape: [S.out, S.in], data: Float32Array.from(S.W) }]]);
  const config = codyra.schema.parse({ r: S.r, kappa_max: 1e-2, lambda_num: 2, dense_ratio: 0.2 });
  const set = new AdapterSet(codyra, config, [site], weights, { targetModules: 'all-linear' });
  const key = (sfx: string) => `base_model.model.m.${sfx}`;
  set.params.get(key(CODYRA_KEYS.A))!.set(S.init.A);
  set.params.get(key(CODYRA_KEYS.B))!.set(S.init.B);
  set.params.get(key(CODYRA_KEYS.gate))!.set(S.init.gate);
  const g = new Graph('codyra');
  const x = g.input('x', 'float32', [S.N, S.in]);
  const y = set.linear({ training: true })(site, x, g.weight('m.weight', Float32Array.from(S.W), [S.out, S.in]));
  const loss = op.reduceSum(op.mul(y, g.weight('R', Float32Array.from(S.R), [S.N, S.out])), [0, 1], false);
  g.output('y', y);
  g.output('loss', loss);
  const keys = [...set.params.keys()];
  grad(loss, keys.map((k) => g.leaf(k)!)).forEach((gr, i) => g.output(`grad.${keys[i]}`, gr));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  codyra.hooks!.startRun!({ state: set.state as any, config, sites: set.hookSites() });
  // κ schedule of this toy run (T = 3, dense 0.6, λ = [0, 1e-2]): step 0 keeps every gate, step 1 thresholds at 1e-2 — the fixture's two iterations.
  assert.deepEqual([kappaAt(0, 3, config), kappaAt(1, 3, config)], [{ kappa: 0, prune: false }, { kappa: 1e-2, prune: true }]);
  for (const [it, want] of S.iters.entries()) {
    const feeds: Record<string, any> = { x: { data: Float32Array.from(S.x), dims: [S.N, S.in] } };
    for (const [k, v] of set.params) feeds[k] = { data: v, dims: set.shapes.get(k)! };
    const out = await cg.run(feeds);
    assert.ok(worst(out.y.data as Float32Array, want.y) < 1e-5, `iteration ${it}: y`);
    assert.ok(Math.abs(Number(out.loss.data[0]) - want.loss) < 1e-5 * Math.max(1, Math.abs(want.loss)), `iteration ${it}: loss`);
    for (const sfx of Object.values(CODYRA_KEYS)) assert.ok(worst(out[`grad.${key(sfx)}`].data as Float32Array, want.grads[sfx]) < 1e-5, `iteration ${it}: ∂L/∂${sfx}`);
    // The update from the reference's gradients (so the check isolates the step).
    const grads = new Map(Object.values(CODYRA_KEYS).map((sfx) => [key(sfx), Float32Array.from(want.grads[sfx] as number[])]));
    codyra.hooks!.optimizerStep!({ step: it, totalSteps: 3, lr: S.lr, baseLr: S.lr, warmupSteps: 0, seed: 0, params: set.params, grads, outputs: {}, config, sites: set.hookSites(), state: set.state as any });
    for (const sfx of Object.values(CODYRA_KEYS)) {
      const got = set.params.get(key(sfx))!, ref = want.after[sfx] as number[];
      for (let i = 0; i < ref.length; i++) {
        assert.ok(Math.abs(got[i] - ref[i]) <= 1e-6 * Math.max(1, Math.abs(ref[i])), `iteration ${it}: ${sfx}[${i}] ${got[i]} vs ${ref[i]}`);
        if (sfx === CODYRA_KEYS.gate) assert.equal(got[i] === 0, ref[i] === 0, `iteration ${it}: gate ${i} closed in one only`);
      }
    }
  }
  assert.ok(set.params.get(key(CODYRA_KEYS.gate))!.some((v) => v === 0), 'the threshold closed a gate');
  await cg.release();
});

test('CoDyRA increment_task: the merged W (open ranks only, no scale) and the rank kept equal the transcription; a new adapter starts at the initial rank', () => {
  const S = FIX.step, I = FIX.increment;
  const site: LinearSite = { name: 'm', inFeatures: S.in, outFeatures: S.out, weightKey: 'm.weight', layout: 'out_in' };
  const weights: WeightMap = new Map([['m.weight', { shape: [S.out, S.in], data: Float32Array.from(S.W) }]]);
  const set = new AdapterSet(codyra, codyra.schema.parse({ r: S.r }), [site], weights, { targetModules: 'all-linear' });
  const last = S.iters.at(-1).after;
  set.params.get('base_model.model.m.lora_A.weight')!.set(last['lora_A.weight']);
  set.params.get('base_model.model.m.lora_B.weight')!.set(last['lora_B.weight']);
  set.params.get('base_model.model.m.lora_gate')!.set(I.gate);
  const merged = set.mergeInto(weights).get('m.weight')!.data;
  assert.ok(worst(merged, I.W_merged) < 1e-6, 'merged W');
  assert.equal(set.factorsFor(site).r, I.kept_rank);
  const next = new AdapterSet(codyra, set.config, [site], new Map([['m.weight', { shape: [S.out, S.in], data: merged }]]), { targetModules: 'all-linear', seed: 1 });
  assert.deepEqual(next.shapes.get('base_model.model.m.lora_A.weight'), [I.init_rank, S.in]);
  assert.deepEqual(next.shapes.get('base_model.model.m.lora_gate'), [1, I.init_rank]);
  assert.ok(next.params.get('base_model.model.m.lora_B.weight')!.every((v) => v === 0), 'B starts at 0');
});
