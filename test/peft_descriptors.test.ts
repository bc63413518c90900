// Every registered method describes its PEFT side (AdapterMethod.peft), and
// the one reader/writer round-trips it: config → adapter_config.json fields →
// parsePeftConfig gives back the method (by lorakit.method, and by peft_type
// and its variant fields alone) and the same config. PEFT's spellings read as
// the descriptors say (renamed fields, fields accepted at one value, bias
// spellings, pattern fields).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterSet } from '../src/adapters/inject.ts';
import { METHODS } from '../src/adapters/registry.ts';
import { makePeftConfig } from '../src/adapters/lora/peft.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { peftConfigOf } from '../src/peft/adapter_files.ts';
import { parsePeftConfig, patternSiteConfig, PeftConfigError, serializePeftConfig } from '../src/peft/config.ts';

let model: EncoderModel;
before(async () => {
  model = await loadUseEncoder();
});

// Non-default values where a method has them, so the round trip carries them.
const CONFIGS: Record<string, Record<string, unknown>> = {
  lora: { r: 4, lora_alpha: 12, lora_dropout: 0.1, use_rslora: true, init_lora_weights: 'gaussian' },
  dora: { r: 4, lora_alpha: 6 },
  vera: { r: 16, d_initial: 0.5, projection_prng_key: 3, init_weights: false },
  nola: { r: 4, num_basis_A: 16, num_basis_B: 8, basis_seed: 5 },
  loraxs: { r: 4, lora_alpha: 7 },
  lorasb: { r: 4, init_batches: 2, init_batch_size: 2 },
  loldu: { r: 4, sigma: 0.5 },
  randlora: { r: 64, randlora_alpha: 64, projection_prng_key: 1 },
  hydra: { r_seq: 2, r_par: 3 },
  sltrain: { r: 4, density: 0.01, support_seed: 7 },
  fourierft: { n_frequency: 64, scaling: 300, random_loc_seed: 5, n_frequency_pattern: { conv2: 32 } },
  loca: { n_frequency: 64, scaling: 5, random_loc_seed: 9 },
  smora: { num_ranks: 8, top_k: 2 },
  lamda: { r: 4, freeze_fraction: 0.5, lamda_plus_plus: true },
  adalora: { init_r: 6, target_r: 2, tinit: 3, tfinal: 4, deltaT: 2, orth_reg_weight: 0.1, total_step: 50, lora_alpha: 32 },
  dylora: { r: 6, lora_alpha: 12, eval_rank: 3 },
  increlora: { init_r: 1, target_rank: 4, top_h: 2, init_warmup: 5, incre_interval: 3, max_rank: 6 },
  diffora: { r: 4, rho: 0.25, search_fraction: 0.4, arch_lr: 1e-2 },
  'bayesian-lora': { r: 4, bop_lambda: 0.2, gate_init: 2, quantize: false },
  codyra: { r: 4, kappa_max: 1e-3, dense_ratio: 0.3, lambda_num: 10, weight_decay: 0.01 },
  sora: { r: 4, sparse_lambda: 0.5, sparse_lambda_2: 1e-3, sparse_lr: 2e-3, threshold: 'soft' },
};

test('every registered method has a PEFT descriptor: peft_type, bias spelling, the keys its init makes', () => {
  for (const [name, m] of Object.entries(METHODS)) {
    assert.ok(m.peft, `method '${name}' has no PEFT descriptor (AdapterMethod.peft): it cannot be saved or loaded`);
    assert.match(m.peft.peftType, /^[A-Z][A-Z0-9_]*$/, `${name}: peft_type`);
    assert.match(m.peft.onlyBias, /^[a-z]+_only$/, `${name}: onlyBias`);
    assert.ok(m.peft.moduleKeys.length > 0, `${name}: moduleKeys`);
    assert.ok(CONFIGS[name], `${name}: add a config to CONFIGS in this test`);
    // The keys init makes (on the linear sites of USE) are the ones the descriptor declares.
    const set = new AdapterSet(m, m.schema.parse(CONFIGS[name]), model.sites, model.weights, { targetModules: ['qkv', 'conv2'], seed: 1 });
    for (const site of set.targets) {
      for (const key of set.siteKeys(site.name)) {
        const suffix = key.slice(`base_model.model.${site.name}.`.length);
        assert.ok(m.peft.moduleKeys.includes(suffix), `${name}: init makes '${suffix}', which peft.moduleKeys does not list`);
      }
    }
  }
  // One plain method per peft_type; the others are variants a field selects.
  const byType = new Map<string, string[]>();
  for (const m of Object.values(METHODS)) if (!m.peft.selectedBy) byType.set(m.peft.peftType, [...(byType.get(m.peft.peftType) ?? []), m.name]);
  for (const m of Object.values(METHODS)) assert.equal(byType.get(m.peft.peftType)?.length, 1, `peft_type ${m.peft.peftType}: exactly one method without selectedBy (${byType.get(m.peft.peftType)})`);
});

for (const name of Object.keys(METHODS)) {
  test(`[${name}] descriptor round trip: config → adapter_config.json → the same method and config (with and without lorakit.method)`, () => {
    const m = METHODS[name];
    const set = new AdapterSet(m, m.schema.parse(CONFIGS[name]), model.sites, model.weights, { targetModules: ['qkv', 'conv2'], seed: 1, bias: 'lora_only' });
    const fields = peftConfigOf(set, { baseModel: 'use' });
    assert.equal(fields.peft_type, m.peft.peftType);
    assert.equal(fields.bias, m.peft.onlyBias);
    const json = JSON.parse(serializePeftConfig(fields, { lorakit: { method: name } }));
    for (const withBlock of [true, false]) {
      if (!withBlock) delete json.lorakit;
      const p = parsePeftConfig(json, { warn: (w) => assert.fail(`unexpected warning: ${w}`) });
      assert.equal(p.method, m, `read as ${p.method.name}`);
      assert.deepEqual(p.methodConfig, set.config);
      assert.equal(p.bias, 'lora_only');
      assert.deepEqual(p.config.target_modules, ['qkv', 'conv2']);
      // Written again from what was read: the same file.
      const again = new AdapterSet(m, p.methodConfig, model.sites, model.weights, { targetModules: ['qkv', 'conv2'], seed: 1, bias: 'lora_only' });
      assert.equal(serializePeftConfig(peftConfigOf(again, { baseModel: 'use', peftConfig: p })), serializePeftConfig(fields));
    }
  });
}

test("PEFT's spellings: renamed fields, fields accepted at one value, bias per tuner, the variant field", () => {
  const vera = { peft_type: 'VERA', target_modules: ['qkv'], r: 8, init_vera_weights: false, vera_dropout: null, save_projection: false };
  const p = parsePeftConfig(vera, { warn: (w) => assert.fail(w) });
  assert.equal(p.method.name, 'vera');
  assert.equal((p.methodConfig as { init_weights: boolean }).init_weights, false, 'init_vera_weights is init_weights');
  assert.equal(p.config.save_projection, false, 'the loader reads save_projection');
  assert.throws(() => parsePeftConfig({ ...vera, vera_dropout: 0.1 }), (e: Error) => e instanceof PeftConfigError && /vera_dropout = 0.1 is not supported by lorakit's vera \(it implements vera_dropout = 0\)/.test(e.message));
  assert.equal(parsePeftConfig({ ...vera, bias: 'vera_only' }).bias, 'lora_only');
  assert.throws(() => parsePeftConfig({ ...vera, bias: 'fourier_only' }), /bias 'fourier_only' is not one of 'none', 'all', 'vera_only'/);
  assert.throws(() => parsePeftConfig({ peft_type: 'LORA', target_modules: ['q'], bias: 'vera_only' }), /bias 'vera_only' is not one of 'none', 'all', 'lora_only'/);
  assert.equal(parsePeftConfig({ peft_type: 'LORA', target_modules: ['q'], use_dora: true }).method.name, 'dora');
  assert.equal(parsePeftConfig({ peft_type: 'lora', target_modules: ['q'] }).method.name, 'lora');
  assert.throws(() => parsePeftConfig({ peft_type: 'LORA', target_modules: ['q'], lora_alpha: -1 }), (e: Error) => e instanceof PeftConfigError && /invalid lora config: lora_alpha/.test(e.message));
  assert.throws(() => parsePeftConfig({ peft_type: 'IA3', target_modules: ['q'] }), /peft_type 'IA3' is not supported \(lorakit reads LORA, .*VERA/);
});

test("pattern fields set their config field per module (LoRA's rank_pattern → r, alpha_pattern → lora_alpha)", () => {
  const c = makePeftConfig({ target_modules: ['qkv'], r: 4, lora_alpha: 8, rank_pattern: { 'encoder.layer.1.attention.qkv': 2 }, alpha_pattern: { qkv: 3 } });
  const siteConfig = patternSiteConfig(METHODS.lora, c)!;
  const [q0, q1] = model.sites.filter((s) => s.name.endsWith('qkv'));
  const base = METHODS.lora.schema.parse({ r: 4, lora_alpha: 8 });
  assert.deepEqual([siteConfig(q0, base).r, siteConfig(q0, base).lora_alpha], [4, 3]);
  assert.deepEqual([siteConfig(q1, base).r, siteConfig(q1, base).lora_alpha], [2, 3]);
  assert.equal(patternSiteConfig(METHODS.lora, makePeftConfig({ target_modules: ['qkv'] })), undefined, 'no patterns: the set config for every module');
  assert.equal(patternSiteConfig(METHODS.vera, { rank_pattern: { qkv: 2 } }), undefined, 'VeRA has no pattern fields');
});
