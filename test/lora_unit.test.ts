// LoRA pieces checked in isolation: PEFT's target matching rules, scaling
// (plain and rsLoRA), initialization, and ΔW against a direct product.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matchesTarget, selectTargets } from '../src/adapters/targets.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loraScaling } from '../src/adapters/lora/config.ts';
import { Rng } from '../src/util/rng.ts';
import type { LinearSite } from '../src/models/types.ts';

const site = (name: string, i = 6, o = 5): LinearSite => ({ name, inFeatures: i, outFeatures: o, weightKey: `${name}.weight`, layout: 'out_in' });

test('target_modules: a list matches exact names and dotted suffixes only', () => {
  assert.ok(matchesTarget('encoder.layer.0.attention.self.query', ['query']));
  assert.ok(matchesTarget('encoder.layer.0.attention.self.query', ['self.query']));
  assert.ok(matchesTarget('query', ['query']));
  assert.ok(!matchesTarget('encoder.layer.0.attention.self.myquery', ['query']));
  assert.ok(!matchesTarget('encoder.layer.0.attention.self.query.x', ['query']));
});

test('target_modules: a string is a regex that must match the whole name', () => {
  assert.ok(matchesTarget('encoder.layer.1.attention.qkv', 'encoder\\.layer\\.\\d\\.attention\\.qkv'));
  assert.ok(!matchesTarget('encoder.layer.1.attention.qkv', 'qkv'), 'a bare string is not a suffix match');
  assert.ok(matchesTarget('encoder.layer.1.attention.qkv', '.*qkv'));
});

test("'all-linear' takes every site except the named heads", () => {
  const sites = [site('a.q'), site('a.v'), site('classifier')];
  assert.deepEqual(selectTargets(sites, 'all-linear', ['classifier']).map((s) => s.name), ['a.q', 'a.v']);
});

test('scaling is alpha/r, or alpha/sqrt(r) with use_rslora', () => {
  assert.equal(loraScaling(lora.schema.parse({ r: 16, lora_alpha: 32 })), 2);
  assert.equal(loraScaling(lora.schema.parse({ r: 16, lora_alpha: 32, use_rslora: true })), 8);
  const c = lora.schema.parse({});
  assert.equal(c.r, 8);
  assert.equal(c.lora_alpha, 8);
  assert.equal(c.lora_dropout, 0);
});

test('init: A ~ U(±1/sqrt(in)) (kaiming_uniform a=√5), B = 0; init_lora_weights=false makes B random', () => {
  const s = site('m', 400, 30);
  const [A, B] = lora.init({ site: s, config: lora.schema.parse({ r: 8 }), rng: new Rng(1), baseWeight: new Float32Array(0) });
  const bound = 1 / Math.sqrt(400);
  assert.deepEqual(A.shape, [8, 400]);
  assert.deepEqual(B.shape, [30, 8]);
  assert.ok(A.data.every((x) => Math.abs(x) <= bound));
  assert.ok(Math.max(...A.data) > 0.9 * bound, 'A should fill its range');
  assert.ok(B.data.every((x) => x === 0));
  const [, B2] = lora.init({ site: s, config: lora.schema.parse({ r: 8, init_lora_weights: false }), rng: new Rng(1), baseWeight: new Float32Array(0) });
  assert.ok(B2.data.some((x) => x !== 0));
  assert.ok(B2.data.every((x) => Math.abs(x) <= 1 / Math.sqrt(8)));
});

test('deltaWeight equals s·B·A computed directly; parameter count is r·(in+out)', () => {
  const s = site('m', 7, 4);
  const cfg = lora.schema.parse({ r: 3, lora_alpha: 5, use_rslora: true, init_lora_weights: false });
  const [A, B] = lora.init({ site: s, config: cfg, rng: new Rng(2), baseWeight: new Float32Array(0) });
  const dW = lora.deltaWeight!(s, cfg, { 'lora_A.weight': A.data, 'lora_B.weight': B.data });
  const sc = 5 / Math.sqrt(3);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 7; j++) {
    let v = 0;
    for (let k = 0; k < 3; k++) v += B.data[i * 3 + k] * A.data[k * 7 + j];
    assert.ok(Math.abs(dW[i * 7 + j] - sc * v) < 1e-6);
  }
  assert.equal(lora.paramCount(s, cfg), 3 * (7 + 4));
});
