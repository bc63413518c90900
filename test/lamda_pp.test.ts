// LaMDA++ (src/adapters/lamda/allocate.ts): per-module ranks from the
// normalized singular-value energy of each weight, against the PyTorch
// reference (tools/reference/lamda_pp.py → test/fixtures/lamda_pp.json, which
// uses torch.linalg.svdvals); forward/gradients of a site at its allocated
// rank; parameter count; ranks saved in rank_pattern and reloaded as saved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { grad } from '../src/autodiff/grad.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lamda } from '../src/adapters/lamda/index.ts';
import { allocateRanks, normalizedEnergy } from '../src/adapters/lamda/allocate.ts';
import { rankFor } from '../src/adapters/lamda/config.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';
import { loadAdapterWeights, loadPeftAdapter, readAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { tinyReviews } from './helpers/use_reviews.ts';
import { ClassificationTrainer } from '../src/train/trainer.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/lamda_pp.json', import.meta.url), 'utf8'));
type Mod = { name: string; out: number; in: number; W: number[] };
const MODS: Mod[] = FIX.modules;

/** The fixture's modules as linear sites; `layout` 'in_out' stores each weight transposed. */
function toyModel(layout: 'out_in' | 'in_out'): { sites: LinearSite[]; weights: WeightMap } {
  const sites: LinearSite[] = [];
  const weights: WeightMap = new Map();
  MODS.forEach((m) => {
    const key = `${m.name}.weight`;
    sites.push({ name: m.name, inFeatures: m.in, outFeatures: m.out, weightKey: key, layout });
    const w = new Float32Array(m.out * m.in);
    for (let i = 0; i < m.out; i++) for (let j = 0; j < m.in; j++) {
      const v = m.W[i * m.in + j];
      if (layout === 'out_in') w[i * m.in + j] = v;
      else w[j * m.out + i] = v;
    }
    weights.set(key, { shape: layout === 'out_in' ? [m.out, m.in] : [m.in, m.out], data: w });
  });
  return { sites, weights };
}

const ppConfig = (c: { r: number; total_rank: number | null; min_rank: number; max_rank: number | null }, extra: object = {}) =>
  lamda.schema.parse({ ...c, lamda_plus_plus: true, lora_alpha: 8, ...extra });

test('LaMDA++ ranks and energies equal the PyTorch reference (3 budgets, both layouts)', () => {
  for (const c of FIX.cases) {
    // The allocation itself, from [out, in] weights.
    const mods = MODS.map((m) => ({ name: m.name, out: m.out, in: m.in, weight: Float32Array.from(m.W) }));
    const a = allocateRanks(mods, { r: c.config.r, total: c.config.total_rank, minRank: c.config.min_rank, maxRank: c.config.max_rank });
    assert.deepEqual(a.ranks, c.ranks, `ranks for ${JSON.stringify(c.config)}`);
    a.energies.forEach((e, i) => assert.ok(Math.abs(e - c.energies[i]) < 1e-9, `energy of ${MODS[i].name}: ${e} vs torch ${c.energies[i]}`));
    assert.equal(a.ranks.reduce((s, r) => s + r, 0), c.config.total_rank ?? c.config.r * MODS.length, 'Σ r_l = budget');
    // Through an AdapterSet: the set's config carries the ranks as rank_pattern, in either weight layout.
    for (const layout of ['out_in', 'in_out'] as const) {
      const { sites, weights } = toyModel(layout);
      const set = new AdapterSet(lamda, ppConfig(c.config), sites, weights, { targetModules: 'all-linear', seed: 1 });
      assert.deepEqual(set.targets.map((s) => set.config.rank_pattern[s.name]), c.ranks, `${layout} rank_pattern`);
      for (const s of set.targets) {
        const r = rankFor(set.config, s.name);
        assert.deepEqual(set.shapes.get(`base_model.model.${s.name}.lamda_S.weight`), [r, r]);
        assert.deepEqual(set.shapes.get(`base_model.model.${s.name}.lamda_B.weight`), [s.outFeatures, r]);
      }
    }
  }
});

test('LaMDA++: trainable parameters = Σ_l (r_l² + out_l·r_l), the METHODS.md formula at each allocated rank', () => {
  for (const c of FIX.cases) {
    const { sites, weights } = toyModel('out_in');
    const set = new AdapterSet(lamda, ppConfig(c.config), sites, weights, { targetModules: 'all-linear' });
    const formula = MODS.reduce((s, m, i) => s + c.ranks[i] * c.ranks[i] + m.out * c.ranks[i], 0);
    assert.equal(set.trainableCount(), formula);
    assert.equal(set.targets.reduce((s, site) => s + lamda.paramCount(site, set.config), 0), formula);
  }
});

test('LaMDA++: forward and gradients of a site at its allocated rank match the reference (both layouts)', async () => {
  const S = FIX.site;
  const c0 = FIX.cases[0];
  for (const layout of ['out_in', 'in_out'] as const) {
    const { sites, weights } = toyModel(layout);
    const set = new AdapterSet(lamda, ppConfig(c0.config, { lora_alpha: S.lora_alpha }), sites, weights, { targetModules: 'all-linear', seed: 2 });
    const site = set.targets.find((s) => s.name === S.module)!;
    assert.equal(rankFor(set.config, site.name), S.r);
    const kS = `base_model.model.${site.name}.lamda_S.weight`, kB = `base_model.model.${site.name}.lamda_B.weight`;
    set.params.get(kS)!.set(S.S);
    set.params.get(kB)!.set(S.B);
    const g = new Graph('lamda_pp');
    const x = g.input('x', 'float32', [S.n, site.inFeatures]);
    const w = weights.get(site.weightKey)!;
    const y = set.linear({ training: true })(site, x, g.weight(site.weightKey, w.data, w.shape));
    const loss = op.reduceSum(op.mul(y, g.weight('R', Float32Array.from(S.R), [S.n, site.outFeatures])), [0, 1], false);
    const [gS, gB] = grad(loss, [g.leaf(kS)!, g.leaf(kB)!]);
    g.output('y', y);
    g.output('gS', gS);
    g.output('gB', gB);
    const cg = await CompiledGraph.compile(g, { threads: 1 });
    const res = await cg.run({
      x: { data: Float32Array.from(S.x), dims: [S.n, site.inFeatures] },
      [kS]: { data: set.params.get(kS)!, dims: [S.r, S.r] },
      [kB]: { data: set.params.get(kB)!, dims: [site.outFeatures, S.r] },
    });
    await cg.release();
    const close = (got: ArrayLike<number>, want: number[], tol: number, what: string) => {
      assert.equal(got.length, want.length, what);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
      assert.ok(worst <= tol, `${layout} ${what}: max scaled |Δ| ${worst.toExponential(2)} > ${tol}`);
    };
    close(res.y.data as Float32Array, S.y, 1e-5, 'y');
    close(res.gS.data as Float32Array, S.grads['lamda_S.weight'], 1e-4, '∂L/∂S');
    close(res.gB.data as Float32Array, S.grads['lamda_B.weight'], 1e-4, '∂L/∂B');
  }
});

test('LaMDA++: saved rank_pattern reloads exactly, without recomputing ranks from the weights', () => {
  const c0 = FIX.cases[0];
  const { sites, weights } = toyModel('out_in');
  const set = new AdapterSet(lamda, ppConfig(c0.config), sites, weights, { targetModules: 'all-linear', seed: 4 });
  for (const v of set.params.values()) for (let i = 0; i < v.length; i++) v[i] += 0.01 * ((i % 5) - 2);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-lamdapp-'));
  saveAdapter(dir, set, { baseModel: 'toy' });
  const saved = readAdapter(dir);
  assert.equal(saved.config.lamda_plus_plus, true);
  assert.deepEqual(saved.config.rank_pattern, Object.fromEntries(MODS.map((m, i) => [m.name, c0.ranks[i]])));
  // Reload onto perturbed weights, which would allocate other ranks: the saved ranks must win.
  const other = toyModel('out_in');
  for (const [k, w] of other.weights) for (let i = 0; i < w.data.length; i++) w.data[i] += (k.length % 3) * 0.5 * Math.cos(i);
  const fresh = lamda.schema.parse(saved.config);
  const recomputed = new AdapterSet(lamda, lamda.schema.parse({ ...fresh, rank_pattern: {} }), other.sites, other.weights, { targetModules: 'all-linear' });
  assert.notDeepEqual(recomputed.config.rank_pattern, saved.config.rank_pattern, 'the perturbed weights would allocate other ranks');
  const again = new AdapterSet(lamda, fresh, other.sites, other.weights, { targetModules: saved.config.target_modules, seed: saved.config.lorakit.seed });
  assert.deepEqual(again.config.rank_pattern, saved.config.rank_pattern);
  loadAdapterWeights(again, saved);
  for (const [k, v] of set.params) assert.deepEqual(again.params.get(k), v, k);
  // The same through the generic loader (what lorakit eval / PeftModel use).
  const viaLoader = loadPeftAdapter(other, dir, { warn: () => {} }).set;
  assert.equal(viaLoader.method.name, 'lamda');
  assert.deepEqual(viaLoader.config.rank_pattern, saved.config.rank_pattern);
  for (const [k, v] of set.params) assert.deepEqual(viaLoader.params.get(k), v, k);
});

test('LaMDA++: deterministic, budget errors name the numbers, partial rank_pattern is refused', () => {
  const { sites, weights } = toyModel('out_in');
  const cfg = FIX.cases[0].config;
  const a = new AdapterSet(lamda, ppConfig(cfg), sites, weights, { targetModules: 'all-linear', seed: 1 });
  const b = new AdapterSet(lamda, ppConfig(cfg), sites, weights, { targetModules: 'all-linear', seed: 9 });
  assert.deepEqual(a.config.rank_pattern, b.config.rank_pattern);
  assert.throws(() => new AdapterSet(lamda, ppConfig({ ...cfg, total_rank: 100 }), sites, weights, { targetModules: 'all-linear' }), /total_rank 100 cannot be split over 6 modules.*\[6, 48\]/);
  assert.throws(() => new AdapterSet(lamda, ppConfig({ ...cfg, min_rank: 20, max_rank: 30 }), sites, weights, { targetModules: 'all-linear' }), /min_rank 20 exceeds the largest rank allowed for 'layers\.1\.attn\.q' \(16×48\)/);
  assert.throws(
    () => new AdapterSet(lamda, ppConfig(cfg, { rank_pattern: { 'layers.0.attn.q': 3 } }), sites, weights, { targetModules: 'all-linear' }),
    /rank_pattern gives ranks for 'layers\.0\.attn\.q' but not for 'layers\.0\.attn\.v'/,
  );
  // Without lamda_plus_plus, rank_pattern alone sets per-module ranks (PEFT's suffix rule).
  const manual = new AdapterSet(lamda, lamda.schema.parse({ r: 2, rank_pattern: { 'attn.q': 5 } }), sites, weights, { targetModules: 'all-linear' });
  assert.deepEqual(manual.targets.map((s) => manual.shapes.get(`base_model.model.${s.name}.lamda_S.weight`)![0]), [5, 2, 2, 5, 2, 2]);
  assert.equal(normalizedEnergy(new Float32Array(12), 3, 4, 2), 1, 'a zero weight has no energy outside the top r');
});

test('LaMDA++ on USE: per-module ranks through the trainer; the freezing hook keeps each B (its own r_l) frozen', async () => {
  const model = await loadUseEncoder();
  const data = tinyReviews();
  const set = new AdapterSet(lamda, lamda.schema.parse({ r: 4, lamda_plus_plus: true, freeze_fraction: 0 }), model.sites, model.weights, { targetModules: ['qkv', 'conv2'], seed: 1 });
  const ranks = set.targets.map((s) => rankFor(set.config, s.name));
  assert.equal(ranks.reduce((a, b) => a + b, 0), 4 * set.targets.length);
  assert.ok(new Set(ranks).size > 1, `ranks should differ across modules: ${ranks}`);
  const init = new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)]));
  const t = new ClassificationTrainer(model, set, 2, { epochs: 2, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
  await t.fit(data, data.slice(0, 2));
  await t.release();
  for (const [k, v] of set.params) {
    if (k.endsWith('lamda_B.weight')) assert.deepEqual(v, init.get(k), `${k} must stay frozen`);
    else assert.ok(v.some((x, i) => x !== init.get(k)![i]), `${k} must train`);
  }
});
