// AdaLoRA (src/adapters/adalora/) against a PyTorch transcription of PEFT's
// tuners/adalora (tools/reference/adalora.py → test/fixtures/adalora.json):
// the budget b(t) of every step, the SVD-form forward and gradients with the
// orthogonality term, update_and_allocate over a run (no mask up to tinit,
// cubic masking in the middle, the forced mask at T − tfinal, the fixed
// pattern after it), kthvalue ties; then PEFT's ADALORA files (triplets
// dropped, rank_pattern) and the plain LoRA it becomes.
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
import { adalora, ADALORA_KEYS } from '../src/adapters/adalora/index.ts';
import { budgetSchedule, maskToBudget } from '../src/adapters/adalora/allocator.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { loadPeftAdapter, readAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { saveAdapterAsLora } from '../src/peft/as_lora.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/adalora.json', import.meta.url), 'utf8'));

function worst(got: ArrayLike<number>, want: number[]): number {
  assert.equal(got.length, want.length);
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i])));
  return w;
}

function toyModel(mods: { name: string; out: number; in: number; W?: number[] }[]): { sites: LinearSite[]; weights: WeightMap } {
  return {
    sites: mods.map((m) => ({ name: m.name, inFeatures: m.in, outFeatures: m.out, weightKey: `${m.name}.weight`, layout: 'out_in' as const })),
    weights: new Map(mods.map((m) => [`${m.name}.weight`, { shape: [m.out, m.in], data: m.W ? Float32Array.from(m.W) : new Float32Array(m.out * m.in) }])),
  };
}

test('AdaLoRA budget b(t) and the mask flag equal PEFT\'s budget_schedule at every step (tinit, the cubic middle, T − tfinal, after)', () => {
  const { config, schedule } = FIX.budget;
  schedule.forEach(([budget, mask]: [number, boolean], t: number) => assert.deepEqual(budgetSchedule(t, config), { budget, mask }, `t ${t}`));
  assert.deepEqual(budgetSchedule(config.tinit, config), { budget: config.initBudget, mask: false });
  assert.equal(budgetSchedule(config.total - config.tfinal, config).budget, config.targetBudget);
});

test('AdaLoRA forward (x·(A⊙E)ᵀ·Bᵀ·α/(ranknum+1e-5)), the orthogonality term and the gradients of A, B, E equal the transcription (1e-5)', async () => {
  const F = FIX.forward;
  const { sites, weights } = toyModel(F.modules);
  const set = new AdapterSet(adalora, adalora.schema.parse({ init_r: F.init_r, lora_alpha: F.lora_alpha, orth_reg_weight: F.orth_reg_weight }), sites, weights, { targetModules: 'all-linear' });
  const g = new Graph('adalora');
  const lin = set.linear({ training: true });
  const feeds: Record<string, any> = {};
  let total: Value | null = null;
  F.modules.forEach((m: any, i: number) => {
    for (const [sfx, v] of [[ADALORA_KEYS.A, m.A], [ADALORA_KEYS.B, m.B], [ADALORA_KEYS.E, m.E]] as const) set.params.get(`base_model.model.${m.name}.${sfx}`)!.set(v);
    const x = g.input(`x${i}`, 'float32', [F.N, m.in]);
    feeds[`x${i}`] = { data: Float32Array.from(m.x), dims: [F.N, m.in] };
    const y = lin(sites[i], x, g.weight(`${m.name}.weight`, Float32Array.from(m.W), [m.out, m.in]));
    g.output(`y${i}`, y);
    const t = op.reduceSum(op.mul(y, g.weight(`R${i}`, Float32Array.from(m.R), [F.N, m.out])), [0, 1], false);
    total = total ? op.add(total, t) : t;
  });
  const orth = adapterLossTerm(set, g)!;
  g.output('orth', orth);
  const loss = op.add(total!, orth);
  g.output('loss', loss);
  const keys = [...set.params.keys()];
  grad(loss, keys.map((k) => g.leaf(k)!)).forEach((gr, i) => g.output(`grad.${keys[i]}`, gr));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  for (const [k, v] of set.params) feeds[k] = { data: v, dims: set.shapes.get(k)! };
  const out = await cg.run(feeds);
  await cg.release();
  assert.ok(Math.abs(Number(out.orth.data[0]) - F.orth) < 1e-5 * Math.max(1, F.orth), `orth ${out.orth.data[0]} vs ${F.orth}`);
  assert.ok(Math.abs(Number(out.loss.data[0]) - F.loss) < 1e-5 * Math.max(1, Math.abs(F.loss)));
  F.modules.forEach((m: any, i: number) => {
    assert.ok(worst(out[`y${i}`].data as Float32Array, m.y) < 1e-5, `y ${m.name}`);
    for (const sfx of Object.values(ADALORA_KEYS)) {
      const w = worst(out[`grad.base_model.model.${m.name}.${sfx}`].data as Float32Array, m.grads[sfx]);
      assert.ok(w < 1e-5, `∂L/∂${sfx} of ${m.name}: ${w.toExponential(2)}`);
    }
  });
});

test('AdaLoRA update_and_allocate over a run: EMAs (1e-6), masked E and rank_pattern equal PEFT\'s at every step (no mask ≤ tinit, masks at t = 4, 6, forced at T − tfinal, fixed after)', () => {
  const A = FIX.allocate;
  const { sites, weights } = toyModel(A.modules);
  const config = adalora.schema.parse({ init_r: A.config.init_r, target_r: A.config.target_r, tinit: A.config.tinit, tfinal: A.config.tfinal, deltaT: A.config.deltaT, total_step: A.config.total_step });
  const set = new AdapterSet(adalora, config, sites, weights, { targetModules: 'all-linear' });
  const state = set.state as any;
  const hooks = adalora.hooks!;
  hooks.startRun!({ state, config, sites: set.hookSites() });
  const full = (name: string) => `base_model.model.${name.replace('.default', '')}`;
  const masksSeen: number[] = [];
  for (const s of A.steps) {
    const grads = new Map<string, Float32Array>();
    for (const [name, v] of Object.entries(s.given as Record<string, { p: number[]; g: number[] }>)) {
      set.params.get(full(name))!.set(v.p);
      grads.set(full(name), Float32Array.from(v.g));
    }
    hooks.afterStep!({ step: s.t + 1, totalSteps: 999, lr: 0, baseLr: 0, warmupSteps: 0, seed: 0, params: set.params, grads, outputs: {}, config, sites: set.hookSites(), state });
    for (const [name, E] of Object.entries(s.E as Record<string, number[]>)) {
      const got = set.params.get(full(name))!;
      E.forEach((v, i) => {
        assert.equal(got[i] === 0, v === 0, `t ${s.t}: ${name}[${i}] masked in one only`);
        assert.ok(Math.abs(got[i] - v) <= 1e-6 * Math.max(1, Math.abs(v)), `t ${s.t}: ${name}[${i}]`);
      });
    }
    for (const [name, e] of Object.entries(s.ema as Record<string, { ipt: number[]; unc: number[] }>)) {
      const mine = state.ema.get(full(name));
      assert.ok(mine, `t ${s.t}: no EMA for ${name}`);
      for (const k of ['ipt', 'unc'] as const) e[k].forEach((v: number, i: number) => assert.ok(Math.abs(mine[k][i] - v) <= 1e-6 * Math.abs(v) + 1e-12, `t ${s.t}: ${k} of ${name}[${i}]`));
    }
    if (!Object.keys(s.ema).length) assert.equal(state.ema.size, 0, `t ${s.t}: the EMAs were reset`);
    const pattern = Object.fromEntries([...(state.pattern ?? new Map())].map(([m, keep]: [string, boolean[]]) => [`${m}.lora_E`, keep]));
    assert.deepEqual(pattern, s.rank_pattern, `t ${s.t}: rank_pattern`);
    if (Object.keys(s.rank_pattern).length) masksSeen.push(s.t);
  }
  assert.ok(masksSeen[0] === 4 && masksSeen.includes(8) && masksSeen.includes(11), `patterns from t = ${masksSeen.join(', ')}`);
});

test('AdaLoRA mask_to_budget with tied triplet scores masks every triplet at the threshold (kthvalue, ≤), as PEFT', () => {
  const T = FIX.ties;
  const mods = ['m0', 'm1', 'm2'].map((name, i) => {
    const [out, inF] = [[5, 7], [6, 4], [3, 5]][i];
    const e = (sfx: string) => ({ ipt: Float32Array.from(T.ema[`${name}.${sfx}.default`].ipt), unc: Float32Array.from(T.ema[`${name}.${sfx}.default`].unc) });
    return { module: name, r: 4, in: inF, out, A: e('lora_A'), B: e('lora_B'), E: e('lora_E') };
  });
  const { keep } = maskToBudget(mods, T.init_budget, T.budget);
  assert.deepEqual(Object.fromEntries([...keep].map(([m, k]) => [`${m}.lora_E`, k])), T.pattern);
  const masked = [...keep.values()].flat().filter((k) => !k).length;
  assert.ok(masked > T.init_budget - T.budget, `ties mask more than k (${masked})`);
});

test('AdaLoRA saves as PEFT\'s ADALORA (lora_A/B/E keys, masked triplets dropped, rank_pattern, total_step) and loads back to the same outputs; its plain LoRA form too', async () => {
  const model = await loadUseEncoder();
  const targets = ['encoder.layer.0.attention.qkv', 'encoder.layer.0.ffn.conv2'];
  const config = adalora.schema.parse({ init_r: 4, target_r: 2, init_lora_weights: false });
  const set = new AdapterSet(adalora, config, model.sites, model.weights, { targetModules: targets, seed: 3 });
  const state = set.state as any;
  state.pattern = new Map([[targets[0], [true, false, true, false]], [targets[1], [false, false, false, true]]]);
  state.totalSteps = 40;
  for (const [m, keep] of state.pattern) keep.forEach((k: boolean, i: number) => !k && (set.params.get(`base_model.model.${m}.lora_E`)![i] = 0));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-adalora-'));
  saveAdapter(dir, set, { baseModel: 'use' });
  const file = readAdapter(dir);
  assert.equal(file.config.peft_type, 'ADALORA');
  assert.equal(file.config.total_step, 40);
  assert.equal(file.config.init_r, 4);
  assert.deepEqual(file.config.rank_pattern, { [`${targets[0]}.lora_E`]: [true, false, true, false], [`${targets[1]}.lora_E`]: [false, false, false, true] });
  assert.deepEqual(file.tensors.get(`base_model.model.${targets[0]}.lora_A`)!.shape, [2, 256]);
  assert.deepEqual(file.tensors.get(`base_model.model.${targets[0]}.lora_E`)!.shape, [2, 1]);
  assert.deepEqual(file.tensors.get(`base_model.model.${targets[1]}.lora_B`)!.shape, [512, 1]);
  assert.ok(![...file.tensors.keys()].some((k) => k.includes('ranknum')), 'ranknum is not saved (PEFT)');
  // Every field of an adapter_config.json PEFT itself wrote for AdaLoRA
  // (huggingface/peft method_comparison/MetaMathQA/experiments/adalora/llama-3.2-3B-rank32/adapter_config.json).
  const PEFT_ADALORA_FIELDS = ['alpha_pattern', 'auto_mapping', 'base_model_name_or_path', 'beta1', 'beta2', 'bias', 'corda_config', 'deltaT', 'eva_config', 'exclude_modules', 'fan_in_fan_out',
    'inference_mode', 'init_lora_weights', 'init_r', 'layer_replication', 'layers_pattern', 'layers_to_transform', 'loftq_config', 'lora_alpha', 'lora_bias', 'lora_dropout', 'megatron_config',
    'megatron_core', 'modules_to_save', 'orth_reg_weight', 'peft_type', 'r', 'rank_pattern', 'revision', 'target_modules', 'target_r', 'task_type', 'tfinal', 'tinit', 'total_step', 'use_dora', 'use_rslora'];
  for (const f of PEFT_ADALORA_FIELDS) assert.ok(f in file.config, `adapter_config.json lacks PEFT's AdaLoRA field '${f}'`);
  assert.equal(file.config.orth_reg_weight, 0.5);
  assert.equal(file.config.beta1, 0.85);
  const loaded = loadPeftAdapter(model, dir, { warn: () => {} });
  assert.equal(loaded.set.method, adalora);
  assert.equal(loaded.set.trainableCount(), 2 * (256 + 768 + 1) + 1 * (1536 + 512 + 1));
  const tok = UseTokenizer.fromVocabFile();
  const batch = padBatch(['A wonderful, moving film.', 'Terrible plot; I walked out.'].map((t) => tok.encode(t)));
  const runWith = async (s: AdapterSet) => {
    const pm = new PeftModel(model, { threads: 1 });
    pm.addAdapter('x', s);
    const o = (await pm.run(batch)).data as Float32Array;
    await pm.release();
    return o;
  };
  const gated = await runWith(set);
  assert.ok(maxAbsDiff(gated, await runWith(loaded.set)) < 1e-5, 'reloaded ADALORA (scale α/(init_r + 1e-5) kept)');
  const asLora = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-adalora-lora-'));
  const res = saveAdapterAsLora(asLora, set, { baseModel: 'use' });
  assert.deepEqual(res.ranks, { [targets[0]]: 2, [targets[1]]: 1 });
  const plain = loadPeftAdapter(model, asLora, { warn: () => {} });
  assert.equal(plain.set.method.name, 'lora');
  assert.ok(maxAbsDiff(gated, await runWith(plain.set)) < 1e-5, 'plain LoRA form');
});
