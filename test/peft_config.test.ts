// adapter_config.json reading/writing with PEFT's names and defaults, pattern
// and layer matching, and small units: LoRA+ groups, PiSSA/OLoRA residuals,
// DoRA's magnitude and ΔW, 'cat' combination (the formulas of
// add_weighted_adapter are checked against real PEFT in peft_real.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isPeftTarget, layerIndex, parsePeftConfig, patternMatches, serializePeftConfig, PeftConfigError } from '../src/peft/config.ts';
import { makePeftConfig, rankAlphaFor } from '../src/adapters/lora/peft.ts';
import { loraPlusGroups } from '../src/adapters/lora/plus.ts';
import { AdamW } from '../src/optim/adamw.ts';
import { pissa } from '../src/adapters/pissa/index.ts';
import { olora } from '../src/adapters/olora/index.ts';
import { dora, MAGNITUDE } from '../src/adapters/dora/index.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { combineAdapters } from '../src/serve/peft_model.ts';
import { Rng } from '../src/util/rng.ts';
import type { LinearSite, WeightMap } from '../src/models/types.ts';

test('the minimum config loads with PEFT defaults; saving writes lists and inference_mode true', () => {
  const { config, unknown } = parsePeftConfig({ peft_type: 'LORA', target_modules: ['q', 'v'] }, { warn: () => assert.fail('no warning expected') });
  assert.deepEqual(unknown, {});
  assert.equal(config.r, 8);
  assert.equal(config.lora_alpha, 8);
  assert.equal(config.bias, 'none');
  assert.equal(config.init_lora_weights, true);
  assert.equal(config.use_dora, false);
  assert.deepEqual(config.rank_pattern, {});
  const out = JSON.parse(serializePeftConfig({ ...config, target_modules: ['v', 'q', 'v'] }));
  assert.equal(out.inference_mode, true);
  assert.deepEqual(out.target_modules, ['v', 'q']);
  assert.equal(out.peft_type, 'LORA');
});

test('unknown fields are kept and warned about; bad values fail with the field name', () => {
  const warnings: string[] = [];
  const p = parsePeftConfig({ peft_type: 'LORA', target_modules: 'q', new_field: 3 }, { warn: (m) => warnings.push(m) });
  assert.deepEqual(p.unknown, { new_field: 3 });
  assert.match(warnings[0], /new_field/);
  assert.equal(JSON.parse(serializePeftConfig(p.config, { unknown: p.unknown })).new_field, 3);
  assert.throws(() => parsePeftConfig({ peft_type: 'LORA', target_modules: ['q'], bias: 'some' }), (e: Error) => e instanceof PeftConfigError && /bias/.test(e.message));
  assert.throws(() => parsePeftConfig({ peft_type: 'IA3', target_modules: ['q'] }), /IA3/);
  assert.throws(() => parsePeftConfig({ peft_type: 'LORA' }), /target_modules/);
});

test('rank_pattern / alpha_pattern keys match with (.*\\.)?(key)$', () => {
  assert.ok(patternMatches('q_proj', 'model.layers.0.self_attn.q_proj'));
  assert.ok(patternMatches('layers.0.self_attn.q_proj', 'model.layers.0.self_attn.q_proj'));
  assert.ok(!patternMatches('q_proj', 'model.layers.0.self_attn.xq_proj'));
  assert.ok(!patternMatches('layers.1.self_attn.q_proj', 'model.layers.11.self_attn.q_proj'));
  const c = makePeftConfig({ target_modules: ['q_proj'], r: 4, lora_alpha: 16, rank_pattern: { 'layers.1.self_attn.q_proj': 2 }, alpha_pattern: { q_proj: 5 } });
  assert.deepEqual(rankAlphaFor(c, 'model.layers.1.self_attn.q_proj'), { r: 2, lora_alpha: 5 });
  assert.deepEqual(rankAlphaFor(c, 'model.layers.0.self_attn.q_proj'), { r: 4, lora_alpha: 5 });
});

test('exclude_modules and layers_to_transform', () => {
  const c = makePeftConfig({ target_modules: ['q_proj', 'v_proj'], exclude_modules: ['layers.0.self_attn.v_proj'], layers_to_transform: [0, 2] });
  assert.ok(isPeftTarget(c, 'model.layers.0.self_attn.q_proj'));
  assert.ok(!isPeftTarget(c, 'model.layers.0.self_attn.v_proj'));
  assert.ok(!isPeftTarget(c, 'model.layers.1.self_attn.q_proj'));
  assert.ok(isPeftTarget(c, 'model.layers.2.self_attn.v_proj'));
  assert.equal(layerIndex('encoder.layer.3.attention.qkv', null), 3);
  assert.equal(layerIndex('model.h.5.attn.c_attn', 'h'), 5);
});

test('LoRA+: B gets ratio× the learning rate through AdamW groups', () => {
  const params = new Map([['m.lora_A.weight', new Float32Array(4)], ['m.lora_B.weight', new Float32Array(4)]]);
  const opt = new AdamW(params, { lr: 1e-3, weightDecay: 0, groups: loraPlusGroups(16) });
  opt.step(new Map([['m.lora_A.weight', new Float32Array(4).fill(1)], ['m.lora_B.weight', new Float32Array(4).fill(1)]]));
  const a = params.get('m.lora_A.weight')![0], b = params.get('m.lora_B.weight')![0];
  assert.ok(Math.abs(b / a - 16) < 1e-4, `ratio ${b / a}`);
});

const site: LinearSite = { name: 'm', inFeatures: 12, outFeatures: 9, weightKey: 'm.weight', layout: 'out_in' };
const W = new Rng(3).fillNormal(new Float32Array(9 * 12), 0, 1);

test('PiSSA: the top singular directions, split evenly; W_res + s·B·A = W0; OLoRA: B orthonormal', () => {
  for (const init of [pissa, olora]) {
    const { A, B, residual } = init.init({ value: init === pissa ? 'pissa' : 'olora', r: 3, scaling: 2, W, out: 9, in: 12, rng: new Rng(1) });
    for (let i = 0; i < 9; i++) for (let j = 0; j < 12; j++) {
      let d = 0;
      for (let k = 0; k < 3; k++) d += B[i * 3 + k] * A[k * 12 + j];
      assert.ok(Math.abs(residual![i * 12 + j] + 2 * d - W[i * 12 + j]) < 1e-5);
    }
    if (init === olora) for (let p = 0; p < 3; p++) for (let q = 0; q < 3; q++) {
      let d = 0;
      for (let i = 0; i < 9; i++) d += B[i * 3 + p] * B[i * 3 + q];
      assert.ok(Math.abs(d - (p === q ? 1 : 0)) < 1e-5);
    }
  }
  // PEFT splits each component evenly, √(S_k/s) on both sides: ‖A_k‖ = ‖B_:k‖ (with s = 2 an uneven split such as
  // √S_k on A and √S_k/s on B fails here; the values themselves are PEFT's own: peft_real.test.ts).
  {
    const { A, B } = pissa.init({ value: 'pissa', r: 3, scaling: 2, W, out: 9, in: 12, rng: new Rng(1) });
    for (let k = 0; k < 3; k++) {
      let a = 0, b = 0;
      for (let j = 0; j < 12; j++) a += A[k * 12 + j] ** 2;
      for (let i = 0; i < 9; i++) b += B[i * 3 + k] ** 2;
      assert.ok(Math.abs(Math.sqrt(a) - Math.sqrt(b)) < 1e-5, `component ${k}: ‖A_k‖ ${Math.sqrt(a)} vs ‖B_k‖ ${Math.sqrt(b)}`);
    }
  }
  // PiSSA takes the principal part: the residual's Frobenius norm is the smallest a rank-3 removal can leave.
  const { residual } = pissa.init({ value: 'pissa', r: 3, scaling: 1, W, out: 9, in: 12, rng: new Rng(1) });
  const { residual: ores } = olora.init({ value: 'olora', r: 3, scaling: 1, W, out: 9, in: 12, rng: new Rng(1) });
  const fro = (x: Float32Array) => Math.sqrt(x.reduce((s, v) => s + v * v, 0));
  assert.ok(fro(residual!) < fro(ores!));
});

test('DoRA: magnitude = row norms of W0 + s·B·A at init; merged ΔW rows have norm m', () => {
  const cfg = dora.schema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false });
  const specs = dora.init({ site, config: cfg, rng: new Rng(2), baseWeight: W });
  const p = Object.fromEntries(specs.map((s) => [s.key, s.data]));
  p[MAGNITUDE] = p[MAGNITUDE].map((v: number, i: number) => v * (1 + 0.1 * i));
  const dW = dora.deltaWeight!(site, cfg, p, W);
  for (let i = 0; i < 9; i++) {
    let n = 0;
    for (let j = 0; j < 12; j++) n += (W[i * 12 + j] + dW[i * 12 + j]) ** 2;
    assert.ok(Math.abs(Math.sqrt(n) - p[MAGNITUDE][i]) < 1e-4);
  }
});

test("weighted combination: 'cat' is Σ wᵢ·ΔWᵢ exactly, negative weights too (PEFT's own results: test/peft_real.test.ts); bad inputs are refused by name", () => {
  const weights: WeightMap = new Map([['m.weight', { shape: [9, 12], data: W }]]);
  const mk = (seed: number, alpha: number, r = 2) => new AdapterSet(lora, lora.schema.parse({ r, lora_alpha: alpha, init_lora_weights: false }), [site], weights, { targetModules: ['m'], seed });
  const a = mk(1, 4), b = mk(2, 2);
  const dA = a.deltaFor(site, W), dB = b.deltaFor(site, W);
  const cat = combineAdapters({ sites: [site], weights }, [a, b], [0.7, -0.3], 'cat');
  assert.equal(cat.configFor(site).r, 4);
  const dC = cat.deltaFor(site, W);
  for (let i = 0; i < dC.length; i++) assert.ok(Math.abs(dC[i] - (0.7 * dA[i] - 0.3 * dB[i])) < 1e-5);
  assert.throws(() => combineAdapters({ sites: [site], weights }, [a, mk(3, 4, 3)], [0.5, 0.5], 'linear'), /'linear' needs adapters of the same rank.*r = 2, 3/);
  assert.throws(() => combineAdapters({ sites: [site], weights }, [a, b], [0.5, NaN], 'cat'), /weight 1 is NaN/);
});

test("PEFT 0.20's LoraConfig: its new fields parse; runtime_config is ignored as PEFT does; fields for variants lorakit lacks are refused by name", () => {
  const base = { peft_type: 'LORA', target_modules: ['q'], peft_version: '0.20.0', ensure_weight_tying: false, use_bdlora: null, arrow_config: null, lora_ga_config: null, velora_config: null, alora_invocation_tokens: null, monteclora_config: null };
  const p = parsePeftConfig({ ...base, runtime_config: { ephemeral_gpu_offload: false } }, { warn: (w) => assert.fail(w) });
  assert.equal(p.config.peft_version, '0.20.0');
  assert.equal('runtime_config' in JSON.parse(serializePeftConfig(p.config)), false);
  const refused: [string, unknown, RegExp][] = [
    ['alora_invocation_tokens', [5, 6], /Activated LoRA/],
    ['use_bdlora', { target_modules_bd_a: ['q'] }, /BD-LoRA/],
    ['arrow_config', { top_k: 2 }, /Arrow/],
    ['monteclora_config', { num_samples: 2 }, /MonteCLoRA/],
    ['velora_config', { num_groups: 4 }, /VeLoRA.*set velora_config to null/],
    ['lora_bias', true, /lora_B\.bias/],
    ['layer_replication', [[0, 1]], /layer replication/],
    ['trainable_token_indices', [3], /trainable tokens/],
    ['target_parameters', ['w'], /nn\.Parameters/],
  ];
  for (const [k, v, re] of refused) {
    assert.throws(() => parsePeftConfig({ ...base, [k]: v }), (e: Error) => e instanceof PeftConfigError && e.message.includes(k) && re.test(e.message), k);
  }
  // Applied by PEFT only to GPTQ / Megatron layers: a plain model ignores them.
  parsePeftConfig({ ...base, use_qalora: true, megatron_config: { tensor_model_parallel_size: 1 } }, { warn: (w) => assert.fail(w) });
});

test('ensure_weight_tying: refused where the adapter touches a tied embedding or head (PEFT ties their factors); ignored elsewhere, as PEFT', async () => {
  const { loadModel } = await import('../src/models/hf_registry.ts');
  const { createPeftAdapter } = await import('../src/peft/adapter_files.ts');
  const gpt2 = (await loadModel(new URL('./fixtures/hf/gpt2-tiny', import.meta.url).pathname)).model as any;
  const llama = (await loadModel(new URL('./fixtures/hf/llama-tiny', import.meta.url).pathname)).model as any;
  const cfg = (targets: string[]) => ({ peft_type: 'LORA', target_modules: targets, ensure_weight_tying: true });
  assert.throws(() => createPeftAdapter(gpt2, cfg(['wte', 'c_attn']), { headNames: gpt2.headNames }), /ensure_weight_tying is true and the adapter adapts 'transformer\.wte'/);
  assert.equal(createPeftAdapter(gpt2, cfg(['c_attn']), { headNames: gpt2.headNames }).set.targets.length, 2);
  assert.throws(() => createPeftAdapter(gpt2, { ...cfg(['c_attn']), modules_to_save: ['wte'] }, { headNames: gpt2.headNames }), /ensure_weight_tying is true and the adapter adapts 'transformer\.wte'/);
  assert.equal(createPeftAdapter(llama, cfg(['embed_tokens']), { headNames: llama.headNames }).set.targets.length, 1, 'untied llama: nothing to tie');
});
