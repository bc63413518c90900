// The shared adapter test harness (modelled on PEFT's tests/testing_common.py):
// every method registers a case and runs the same checks on the bundled USE
// model:
//   merged == unmerged (1e-4) · disabled == base (1e-6) · save → load round
//   trip identical · training changes adapter (and head) parameters only ·
//   several adapters: switch, delete, weighted combination, mixed batch.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet, PEFT_PREFIX } from '../../src/adapters/inject.ts';
import type { AdapterMethod } from '../../src/adapters/types.ts';
import type { EncoderModel, WeightMap } from '../../src/models/types.ts';
import { loadUseEncoder } from '../../src/models/use_encoder.ts';
import { loadPeftAdapter, saveAdapter } from '../../src/peft/adapter_files.ts';
import { padBatch, PeftModel, TokenBatch } from '../../src/serve/peft_model.ts';
import { UseTokenizer } from '../../src/tokenize/sentencepiece.ts';
import { ClassificationTrainer } from '../../src/train/trainer.ts';
import { maxAbsDiff } from './arrays.ts';

export interface AdapterCase {
  /** Test label. */
  name: string;
  method: AdapterMethod;
  /** Method config fields (parsed by method.schema); use init_lora_weights=false so the adapter changes outputs. */
  config: Record<string, unknown>;
  targetModules: string[];
  /** The init changes the base weight (PiSSA/OLoRA): checks the conversion to LoRA on save. */
  residualInit?: boolean;
}

const TEXTS = ['A wonderful, moving film.', 'Terrible plot and wooden dialogue; I walked out.', 'Loved it!', 'Not great, not terrible, just long.'];

let model: EncoderModel;
let batch: TokenBatch;
let ids: number[][];
let baseOut: Float32Array;

async function run(m: EncoderModel, set?: AdapterSet, b = batch): Promise<Float32Array> {
  const pm = new PeftModel(m, { threads: 2 });
  if (set) pm.addAdapter('x', set);
  const out = (await pm.run(b)).data as Float32Array;
  await pm.release();
  return out;
}

const cases: AdapterCase[] = [];

export function registerAdapterCase(c: AdapterCase): void {
  cases.push(c);
}

/** Runs every registered case (call once, after the registrations). */
export function runAdapterSuite(): void {
  before(async () => {
    model = await loadUseEncoder();
    const tok = UseTokenizer.fromVocabFile();
    ids = TEXTS.map((t) => tok.encode(t));
    batch = padBatch(ids);
    baseOut = await run(model);
  });

  for (const c of cases) {
    const mk = (seed: number, over: Record<string, unknown> = {}) =>
      new AdapterSet(c.method, c.method.schema.parse({ ...c.config, ...over }), model.sites, model.weights, { targetModules: c.targetModules, seed });

    test(`[${c.name}] merged == unmerged (1e-4); disabled == base (1e-6)`, async () => {
      const set = mk(1);
      if (c.residualInit) {
        // W_res + s·B·A = W0: at init the model is unchanged; then "train" it.
        assert.ok(maxAbsDiff(await run(model, set), baseOut) < 1e-4, 'residual init must leave outputs unchanged');
        for (const v of set.params.values()) for (let i = 0; i < v.length; i += 3) v[i] += 0.05;
      }
      const un = await run(model, set);
      assert.ok(maxAbsDiff(un, baseOut) > 1e-3, 'the adapter must change outputs, or the checks prove nothing');
      const merged = await run(model.withWeights(set.mergeInto(model.weights)));
      assert.ok(maxAbsDiff(un, merged) < 1e-4, `merged vs unmerged max |Δ| ${maxAbsDiff(un, merged)}`);
      set.enabled = false;
      assert.ok(maxAbsDiff(await run(model, set), baseOut) < 1e-6, 'disabled adapter must equal the base model');
      const pm = new PeftModel(model, { threads: 2 });
      pm.addAdapter('a', mk(1));
      pm.disableAdapters();
      assert.ok(maxAbsDiff((await pm.run(batch)).data as Float32Array, baseOut) < 1e-6);
      await pm.release();
    });

    test(`[${c.name}] save → load round trip is identical`, async () => {
      const set = mk(2);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-suite-${c.name}-`));
      saveAdapter(dir, set, { baseModel: 'use', adapterName: 'mine' });
      assert.ok(fs.existsSync(path.join(dir, 'mine', 'adapter_model.safetensors')), "a non-default adapter name is a subfolder");
      const loaded = loadPeftAdapter(model, dir, { name: 'mine', warn: () => {} });
      assert.equal(loaded.set.method.name, c.method.name);
      for (const [k, v] of set.params) assert.deepEqual(loaded.set.params.get(k), v, `param ${k}`);
      assert.equal(maxAbsDiff(await run(model, loaded.set), await run(model, set)), 0);
      if (c.residualInit) {
        // PiSSA/OLoRA → LoRA on save: r×2, alpha×2, loads on the *original* base as a plain LoRA.
        for (const v of set.params.values()) for (let i = 0; i < v.length; i += 7) v[i] += 0.01; // "trained"
        const conv = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-conv-${c.name}-`));
        saveAdapter(conv, set, { baseModel: 'use', convertToLora: true });
        const cfg = JSON.parse(fs.readFileSync(path.join(conv, 'adapter_config.json'), 'utf8'));
        assert.equal(cfg.r, 2 * (c.config.r as number));
        assert.equal(cfg.init_lora_weights, true);
        const plain = loadPeftAdapter(model, conv, { warn: () => {} });
        assert.equal(plain.set.baseOverrides.size, 0);
        assert.ok(maxAbsDiff(await run(model, plain.set), await run(model, set)) < 1e-4, 'converted adapter must give the same outputs');
      }
    });

    test(`[${c.name}] training changes adapter parameters only`, async () => {
      const set = mk(3);
      const frozen = new Map([...model.weights].map(([k, v]) => [k, Float32Array.from(v.data)]));
      const init = new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)]));
      const overrides = new Map([...set.baseOverrides].map(([k, v]) => [k, Float32Array.from(v)]));
      const t = new ClassificationTrainer(model, set, 2, { epochs: 1, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
      await t.fit(ids.map((x, i) => ({ ids: x, label: i % 2 })), ids.slice(0, 2).map((x, i) => ({ ids: x, label: i % 2 })));
      await t.release();
      for (const [k, v] of model.weights) assert.deepEqual(v.data, frozen.get(k), `frozen weight ${k} changed`);
      for (const [k, v] of set.baseOverrides) assert.deepEqual(v, overrides.get(k), `residual base ${k} changed`);
      for (const [k, v] of set.params) assert.ok(maxAbsDiff(v, init.get(k)!) > 0, `adapter parameter ${k} did not train`);
    });

    test(`[${c.name}] several adapters: switch, delete, combine, mixed batch`, async () => {
      if (c.residualInit) return; // one residual base per model: served after conversion to LoRA (checked above)
      const a = mk(4), b = mk(5, { lora_alpha: 3 });
      const [outA, outB] = [await run(model, a), await run(model, b)];
      const pm = new PeftModel(model, { threads: 2 });
      pm.addAdapter('a', a);
      pm.addAdapter('b', b);
      assert.equal(maxAbsDiff((await pm.run(batch)).data as Float32Array, outA), 0, "the first adapter is active");
      pm.setAdapter('b');
      assert.equal(maxAbsDiff((await pm.run(batch)).data as Float32Array, outB), 0);
      pm.disableAdapters();
      assert.ok(maxAbsDiff((await pm.run(batch)).data as Float32Array, baseOut) < 1e-6);
      pm.enableAdapters();
      if (c.method.factors) {
        // 'cat' combination == merging 0.7·ΔW_a + 0.3·ΔW_b
        pm.addWeightedAdapter(['a', 'b'], [0.7, 0.3], 'ab', 'cat');
        pm.setAdapter('ab');
        const w: WeightMap = new Map(model.weights);
        for (const site of a.targets) {
          const base = model.weights.get(site.weightKey)!;
          const dA = a.deltaFor(site, base.data), dB = b.deltaFor(site, base.data);
          const merged = Float32Array.from(base.data);
          const m = site.outFeatures, n = site.inFeatures;
          for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) merged[site.layout === 'out_in' ? i * n + j : j * m + i] += 0.7 * dA[i * n + j] + 0.3 * dB[i * n + j];
          w.set(site.weightKey, { shape: base.shape, data: merged });
        }
        assert.ok(maxAbsDiff((await pm.run(batch)).data as Float32Array, await run(model.withWeights(w))) < 1e-4, 'cat combination');
        if (c.method.linearCombination) pm.addWeightedAdapter(['a', 'b'], [0.5, 0.5], 'lin', 'linear');
        // Mixed batch: each row equals running that row alone with its adapter.
        const rows: (string | null)[] = ['a', 'b', null, 'ab'];
        const mixed = (await pm.runMixed(batch, rows)).data as Float32Array;
        const h = mixed.length / batch.B;
        for (let r = 0; r < rows.length; r++) {
          const one = padBatch([ids[r]]);
          if (rows[r]) pm.setAdapter(rows[r]!);
          else pm.disableAdapters();
          const alone = (await pm.run(one)).data as Float32Array;
          pm.enableAdapters();
          assert.ok(maxAbsDiff(mixed.subarray(r * h, (r + 1) * h), alone) < 1e-5, `row ${r} (${rows[r]}) differs from running it alone`);
        }
      }
      pm.deleteAdapter('a');
      assert.deepEqual([...pm.adapters.keys()].includes('a'), false);
      assert.throws(() => pm.setAdapter('a'), /No adapter named 'a'/);
      await pm.release();
    });
  }
}

export { PEFT_PREFIX };
