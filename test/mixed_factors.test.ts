// Methods whose ΔW has low-rank factors (AdapterMethod.factors: ΔW = scale·B·A)
// serve mixed-adapter batches and combine with 'cat', like LoRA: the factors
// give the method's own ΔW; each row of a mixed batch equals that row run
// alone with its adapter; 'cat' equals merging Σ wᵢ·ΔWᵢ. Methods without
// factors, and 'linear' for anything but LoRA, are refused with a clear message.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterSet } from '../src/adapters/inject.ts';
import { METHODS } from '../src/adapters/registry.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { combineAdapters, mixedLinear, padBatch, PeftModel, TokenBatch } from '../src/serve/peft_model.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const TARGETS = ['qkv', 'conv2'];
// Small configs; every method with factors must be listed (checked below), so a new one gets tested.
const CONFIGS: Record<string, Record<string, unknown>> = {
  lora: { r: 4, lora_alpha: 8, init_lora_weights: false },
  vera: { r: 16, d_initial: 0.5 },
  nola: { r: 4, num_basis_A: 16, num_basis_B: 8 },
  loraxs: { r: 4 },
  lorasb: { r: 4 },
  loldu: { r: 4 },
  lamda: { r: 4 },
  hydra: { r_seq: 2, r_par: 3 },
  sora: { r: 4 },
  codyra: { r: 4 },
  adalora: { init_r: 4, lora_alpha: 200 },
  dylora: { r: 4, eval_rank: 3 },
  increlora: { init_r: 2, max_rank: 4, init_weights: false, lora_alpha: 512 },
  diffora: { r: 4 },
  'bayesian-lora': { r: 4, init_weights: false, lora_alpha: 256 },
};
const WITH_FACTORS = Object.values(METHODS).filter((m) => m.factors).map((m) => m.name);

let model: EncoderModel;
let ids: number[][];
let batch: TokenBatch;
before(async () => {
  model = await loadUseEncoder();
  const tok = UseTokenizer.fromVocabFile();
  ids = ['A wonderful, moving film.', 'Terrible plot and wooden dialogue.', 'Loved it!', 'Not great, far too long.'].map((t) => tok.encode(t));
  batch = padBatch(ids);
});

const maxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

/** An adapter of `name` moved off its init ("trained"), different per seed. */
function trained(name: string, seed: number): AdapterSet {
  const m = METHODS[name];
  const set = new AdapterSet(m, m.schema.parse(CONFIGS[name]), model.sites, model.weights, { targetModules: TARGETS, seed });
  const step = name === 'vera' ? 0.5 : 0.02; // VeRA's b starts at 0 and scales a product of small bases
  for (const [k, v] of set.params) for (let i = 0; i < v.length; i++) v[i] += step * Math.sin(seed * 3 + i * 0.7 + k.length);
  return set;
}

test('every method with low-rank factors has a mixed-batch case here', () => {
  assert.deepEqual(WITH_FACTORS.filter((n) => !CONFIGS[n]), [], 'add a config to CONFIGS for the new method');
  assert.ok(WITH_FACTORS.length > 1, 'LoRA is not the only method with factors');
});

for (const name of WITH_FACTORS) {
  test(`[${name}] factors give the method's ΔW; mixed-batch rows equal each row run alone; 'cat' equals the merged Σ wᵢ·ΔWᵢ`, async () => {
    const a = trained(name, 4), b = trained(name, 5);
    for (const site of a.targets) {
      const base = model.weights.get(site.weightKey)!.data;
      const f = a.factorsFor(site, () => base);
      assert.equal(f.A.length, f.r * site.inFeatures);
      assert.equal(f.B.length, site.outFeatures * f.r);
      const dW = a.deltaFor(site, base);
      const scale = maxAbs(dW);
      assert.ok(scale > 0, `${site.name}: ΔW must not be zero, or the check proves nothing`);
      const n = site.inFeatures, m = site.outFeatures;
      let worst = 0;
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let v = 0;
        for (let k = 0; k < f.r; k++) v += f.B[i * f.r + k] * f.A[k * n + j];
        worst = Math.max(worst, Math.abs(f.scale * v - dW[i * n + j]));
      }
      assert.ok(worst < 1e-5 * Math.max(1, scale), `${site.name}: scale·B·A vs ΔW max |Δ| ${worst}`);
    }

    const pm = new PeftModel(model, { threads: 2 });
    pm.addAdapter('a', a);
    pm.addAdapter('b', b);
    const rows: (string | null)[] = ['a', 'b', null, 'b'];
    const mixed = (await pm.runMixed(batch, rows)).data as Float32Array;
    const h = mixed.length / batch.B;
    let changed = 0;
    for (let r = 0; r < rows.length; r++) {
      const one = padBatch([ids[r]]);
      if (rows[r]) pm.setAdapter(rows[r]!);
      else pm.disableAdapters();
      const alone = (await pm.run(one)).data as Float32Array;
      pm.enableAdapters();
      pm.disableAdapters();
      const base = (await pm.run(one)).data as Float32Array;
      pm.enableAdapters();
      if (rows[r]) changed = Math.max(changed, maxAbsDiff(alone, base));
      assert.ok(maxAbsDiff(mixed.subarray(r * h, (r + 1) * h), alone) < 1e-5, `row ${r} (${rows[r]}) differs from running it alone by ${maxAbsDiff(mixed.subarray(r * h, (r + 1) * h), alone)}`);
    }
    assert.ok(changed > 1e-3, `the adapters must change outputs (max |Δ| ${changed}), or the rows prove nothing`);

    // 'cat' is exact: the combined LoRA's ΔW is 0.7·ΔW_a + 0.3·ΔW_b.
    const cat = combineAdapters(model, [a, b], [0.7, 0.3], 'cat');
    assert.equal(cat.method.name, 'lora');
    for (const site of a.targets) {
      const base = model.weights.get(site.weightKey)!.data;
      const [dA, dB, dC] = [a.deltaFor(site, base), b.deltaFor(site, base), cat.deltaFor(site, base)];
      const want = dA.map((v, i) => 0.7 * v + 0.3 * dB[i]);
      assert.ok(maxAbsDiff(dC, want) < 1e-5 * Math.max(1, maxAbs(want)), `${site.name}: cat ΔW max |Δ| ${maxAbsDiff(dC, want)}`);
    }
    if (!METHODS[name].linearCombination) {
      assert.throws(() => combineAdapters(model, [a, b], [0.5, 0.5], 'linear'), new RegExp(`'linear' is PEFT's weighted sum of LoRA's own A and B; method '${name}'`));
    }
    await pm.release();
  });
}

test('methods without low-rank factors refuse mixed batches and combination, naming the method', () => {
  const without = Object.values(METHODS).filter((m) => !m.factors);
  assert.ok(without.length > 0);
  for (const m of without) {
    const config = m.schema.parse(m.name === 'fourierft' || m.name === 'loca' ? { n_frequency: 16 } : m.name === 'smora' ? { num_ranks: 4, top_k: 2 } : m.name === 'randlora' ? { r: 64 } : { r: 4 });
    const set = new AdapterSet(m, config, model.sites, model.weights, { targetModules: ['qkv'] });
    assert.throws(() => mixedLinear([set]), new RegExp(`method '${m.name}' has none .*Methods that mix: ${WITH_FACTORS.join(', ')}`));
    assert.throws(() => combineAdapters(model, [set, set], [0.5, 0.5], 'cat'), new RegExp(`method '${m.name}' cannot be combined`));
  }
});
