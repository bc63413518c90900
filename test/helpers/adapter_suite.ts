// The shared adapter test harness (modelled on PEFT's tests/testing_common.py):
// every method folder's test config (src/adapters/<name>/test_config.ts, shape
// in src/adapters/testing.ts) runs the same checks on the bundled USE model:
//   the adapter changes outputs · merged == unmerged (1e-4), unmerge restores
//   the weights (or is refused) · disabled == base (1e-6) · save → load round
//   trip identical (config, every tensor, method state, outputs) · training
//   moves the adapter's tensors and the head only · several adapters: switch,
//   disable, delete, weighted combination and mixed batches (or their refusal) ·
//   a short training run on each task kind (classification, causal LM, seq2seq,
//   rerank, embed; the one loop) lowers the loss.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../../src/adapters/inject.ts';
import { loadHookState, saveHookState } from '../../src/adapters/hooks.ts';
import type { AdapterMethod } from '../../src/adapters/types.ts';
import { loraScaling, type LoraConfig } from '../../src/adapters/lora/config.ts';
import type { AdapterTestConfig } from '../../src/adapters/testing.ts';
import type { EncoderModel, WeightMap } from '../../src/models/types.ts';
import { loadUseEncoder } from '../../src/models/use_encoder.ts';
import { loadPeftAdapter, readAdapter, saveAdapter } from '../../src/peft/adapter_files.ts';
import { padBatch, PeftModel, TokenBatch } from '../../src/serve/peft_model.ts';
import { UseTokenizer } from '../../src/tokenize/sentencepiece.ts';
import { ClassificationTrainer } from '../../src/train/trainer.ts';
import { fit } from '../../src/train/loop.ts';
import { SUPERVISED_TASK_KINDS, type SupervisedTaskKind, type TrainTask } from '../../src/train/task.ts';
import { ClassificationTask } from '../../src/train/tasks/classification.ts';
import { CausalLmTask } from '../../src/train/tasks/causal_lm.ts';
import { Seq2SeqTask } from '../../src/train/tasks/seq2seq.ts';
import { RerankTask } from '../../src/train/tasks/rerank.ts';
import { AlignTask } from '../../src/train/tasks/align.ts';
import { MaskedLmTask } from '../../src/train/tasks/mlm.ts';
import type { BertModel } from '../../src/models/bert.ts';
import { EmbedTask } from '../../src/train/tasks/embed.ts';
import { loadModel } from '../../src/models/load.ts';
import type { DecoderModel } from '../../src/models/decoder.ts';
import type { Seq2SeqModel } from '../../src/models/seq2seq.ts';
import type { HfTokenizer } from '../../src/io/hf.ts';
import { maxAbsDiff } from './arrays.ts';
import type { AdapterFolder } from './method_folders.ts';

export interface AdapterCase {
  /** Test label: the method's name, a variant's, or a LoRA init's. */
  name: string;
  method: AdapterMethod;
  test: AdapterTestConfig;
  /** The init moves part of W0 into the adapter (PiSSA/OLoRA): checks the residual base and the conversion to LoRA on save. */
  residualInit?: boolean;
  /** A variant of a method's config (rsLoRA) or a LoRA init: the per-task training runs once, for the method itself. */
  variant?: boolean;
}

/** Two sites of USE layer 0: more outputs than inputs (qkv, 256 → 768) and fewer (conv2, 1536 → 512). */
export const DEFAULT_TARGETS = ['encoder.layer.0.attention.qkv', 'encoder.layer.0.ffn.conv2'];

/** The cases the folders' test configs give: each method (and its variants), and LoRA with each init. */
export function adapterCases(folders: AdapterFolder[], lora: AdapterMethod): AdapterCase[] {
  const cases: AdapterCase[] = [];
  for (const f of folders) {
    if (!f.testConfig) continue;
    if (f.methods.length === 1) {
      const tc = f.testConfig as AdapterTestConfig;
      const method = f.methods[0];
      cases.push({ name: method.name, method, test: tc });
      for (const [name, over] of Object.entries(tc.variants ?? {})) cases.push({ name, method, test: { ...tc, config: { ...tc.config, ...over } }, variant: true });
    } else if (f.inits.length === 1) {
      // A residual init serves as plain LoRA once converted; on its own it merges and unmerges as LoRA.
      cases.push({ name: f.folder, method: lora, test: { ...f.testConfig, merge: 'merge-unmerge', combine: true, mixedBatches: true }, residualInit: true, variant: true });
    }
  }
  return cases;
}

const TEXTS = ['A wonderful, moving film.', 'Terrible plot and wooden dialogue; I walked out.', 'Loved it!', 'Not great, not terrible, just long.'];

let model: EncoderModel;
let decoder: { model: DecoderModel; tok: HfTokenizer };
let seq2seq: { model: Seq2SeqModel; tok: HfTokenizer };
let mlm: { model: BertModel; tok: HfTokenizer };
let useTok: UseTokenizer;

const PHRASES = ['red apples fall', 'green pears ripen', 'the blue sky clears', 'a dark night falls', 'the warm sun rises', 'cold rain pours'];
const NUMBERS = ['one thousand', 'twenty two', 'seven hundred', 'forty', 'nine million', 'three'];

/** A task of each kind on its model family with six examples (three batches of two); HF fixtures adapt every linear layer. */
function taskCase(kind: SupervisedTaskKind): { task: TrainTask<any, any>; data: unknown[]; model: { sites: any[]; weights: WeightMap; headNames?: string[] }; targets?: string | string[] } {
  switch (kind) {
    case 'classification':
      return { task: new ClassificationTask(model, { numLabels: 2, seed: 1, buckets: [16] }), data: PHRASES.map((p, i) => ({ ids: useTok.encode(p), label: i % 2 })), model };
    case 'causal-lm':
      return { task: new CausalLmTask(decoder.model, { padId: 0 }), data: PHRASES.map((p) => ({ ids: decoder.tok.encode(p), promptLength: 1 })), model: decoder.model, targets: 'all-linear' };
    case 'seq2seq':
      return { task: new Seq2SeqTask(seq2seq.model), data: PHRASES.map((p) => ({ src: seq2seq.tok.encode(`repeat: ${p}`), tgt: seq2seq.tok.encode(p) })), model: seq2seq.model, targets: 'all-linear' };
    case 'rerank':
      return { task: new RerankTask(model, { seed: 1 }), data: PHRASES.map((q, i) => ({ pairs: PHRASES.slice(0, 3).map((d) => useTok.encode(`${q.split(' ')[1]} ${d}`)), labels: [0, 1, 2].map((j) => (j === i % 3 ? 1 : 0)) })), model };
    case 'embed':
      // Positives the pretrained encoder does not already pair with their anchors (the loss starts high), none of them an anchor too.
      return { task: new EmbedTask(model), data: PHRASES.map((p, i) => ({ anchor: useTok.encode(p), positive: useTok.encode(NUMBERS[i]) })), model };
    case 'align': {
      // Fixed unit targets the pretrained embeddings are far from (the loss starts high).
      const H = model.hiddenSize;
      const unit = (i: number) => {
        const v = Float32Array.from({ length: H }, (_, j) => Math.sin((i + 1) * (j + 1)));
        const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
        return v.map((x) => x / n);
      };
      return { task: new AlignTask(model), data: PHRASES.map((p, i) => ({ ids: useTok.encode(p), target: unit(i) })), model };
    }
    case 'mlm':
      // Every token a target (probability 1) so that six short phrases give a stable loss to lower.
      return { task: new MaskedLmTask(mlm.model, { maskId: 4, specialIds: [0, 2, 3], vocabSize: mlm.model.config.vocab, probability: 1, seed: 1 }), data: PHRASES.map((p) => mlm.tok.encode(p)), model: mlm.model, targets: 'all-linear' };
  }
}
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

const outOf = async (pm: PeftModel) => (await pm.run(batch)).data as Float32Array;
const copyAll = <K>(m: Map<K, Float32Array>) => new Map([...m].map(([k, v]) => [k, Float32Array.from(v)]));
const tmp = (label: string) => fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-suite-${label}-`));

/** A "trained" adapter: every tensor moved off its init, so a check on it cannot pass by luck of the init. */
function nudge(set: AdapterSet, frozen: string[] = []): void {
  for (const [k, v] of set.params) if (!frozen.some((s) => k.endsWith(`.${s}`))) for (let i = 0; i < v.length; i += 3) v[i] += 0.05;
}

/** Gives the method's saved per-module state (SMoRA's β) distinct non-zero values, so its round trip shows. */
function perturbHookState(set: AdapterSet): void {
  const st = saveHookState(set);
  let n = 0;
  for (const tensors of st.values()) for (const t of Object.values(tensors)) for (let i = 0; i < t.data.length; i++) t.data[i] = 0.3 * Math.sin(++n);
  loadHookState(set, st);
}

/** Runs every case (call once). The USE model, the batch and the base outputs are shared. */
export function runAdapterSuite(cases: AdapterCase[]): void {
  before(async () => {
    const FIX = new URL('../fixtures/hf/', import.meta.url).pathname;
    const l = await loadModel(path.join(FIX, 'llama-tiny'), 'decoder');
    const t = await loadModel(path.join(FIX, 't5-tiny'), 'seq2seq');
    decoder = { model: l.model, tok: l.tokenizer! };
    seq2seq = { model: t.model, tok: t.tokenizer! };
    const b = await loadModel(path.join(FIX, 'bert-mlm'), 'encoder');
    mlm = { model: b.model as BertModel, tok: b.tokenizer as HfTokenizer };
    model = await loadUseEncoder();
    const tok = (useTok = UseTokenizer.fromVocabFile());
    ids = TEXTS.map((t) => tok.encode(t));
    batch = padBatch(ids);
    baseOut = await run(model);
  });

  for (const c of cases) {
    const tc = c.test;
    const mk = (seed: number, over: Record<string, unknown> = {}) =>
      new AdapterSet(c.method, c.method.schema.parse({ ...tc.config, ...over }), model.sites, model.weights, { targetModules: tc.targetModules ?? DEFAULT_TARGETS, seed });
    const fixed = tc.frozenInTraining ?? [];

    const merging = { 'merge-unmerge': 'merged == unmerged (1e-4), unmerge restores the weights', merge: 'merged == unmerged (1e-4), unmerge refused', none: 'merge refused (no dense ΔW)' }[tc.merge];
    test(`[${c.name}] changes outputs; ${merging}; disabled == base (1e-6)`, async () => {
      const set = mk(1);
      if (c.residualInit) {
        // W_res + s·B·A = W0: at init the model is unchanged; then "train" it.
        assert.ok(set.baseOverrides.size > 0, 'the init must move part of W0 into the adapter');
        assert.ok(maxAbsDiff(await run(model, set), baseOut) < 1e-4, 'residual init must leave outputs unchanged');
        nudge(set);
      }
      const pm = new PeftModel(model, { threads: 2 });
      pm.addAdapter('a', set);
      const un = await outOf(pm);
      assert.ok(maxAbsDiff(un, baseOut) > 1e-3, `the adapter must change outputs, or the checks prove nothing (max |Δ| ${maxAbsDiff(un, baseOut)})`);
      if (tc.merge === 'none') {
        assert.throws(() => pm.mergeAndUnload(), /no dense ΔW/);
      } else {
        const merged = pm.mergeAndUnload();
        const mo = await run(model.withWeights(merged));
        assert.ok(maxAbsDiff(un, mo) < 1e-4, `merged vs unmerged max |Δ| ${maxAbsDiff(un, mo)}`);
        if (tc.merge === 'merge-unmerge') {
          // Back to the weights the adapter runs on (PiSSA/OLoRA: the residual base), to float32 rounding.
          const want = set.baseWeights(model.weights), back = set.mergeInto(merged, -1);
          for (const site of set.targets) {
            const k = site.weightKey, w = want.get(k)!.data, mw = merged.get(k)!.data;
            assert.ok(maxAbsDiff(mw, w) > 1e-4, `merging must change ${k}`);
            const tol = 1e-6 * mw.reduce((a, x) => Math.max(a, Math.abs(x)), 1);
            assert.ok(maxAbsDiff(back.get(k)!.data, w) <= tol, `unmerged ${k} differs from the weights by ${maxAbsDiff(back.get(k)!.data, w)}`);
          }
        } else {
          assert.throws(() => set.mergeInto(merged, -1), /Unmerging .* not supported/);
        }
      }
      pm.disableAdapters();
      assert.ok(maxAbsDiff(await outOf(pm), baseOut) < 1e-6, 'disabled adapters must give the base model');
      await pm.release();
      set.enabled = false;
      assert.ok(maxAbsDiff(await run(model, set), baseOut) < 1e-6, 'a disabled AdapterSet must give the base model');
    });

    test(`[${c.name}] save → load round trip is identical (config, every tensor, method state, outputs)`, async () => {
      const set = mk(2);
      perturbHookState(set);
      const dir = tmp(c.name);
      saveAdapter(dir, set, { baseModel: 'use', adapterName: 'mine' });
      assert.ok(fs.existsSync(path.join(dir, 'mine', 'adapter_model.safetensors')), 'a non-default adapter name is a subfolder');
      const warnings: string[] = [];
      const loaded = loadPeftAdapter(model, dir, { name: 'mine', warn: (m) => warnings.push(m) });
      assert.deepEqual(warnings, []);
      assert.equal(loaded.set.method, c.method);
      assert.deepEqual(loaded.set.config, set.config);
      assert.deepEqual(loaded.set.targets.map((s) => s.name), set.targets.map((s) => s.name));
      assert.deepEqual([...loaded.set.params.keys()], [...set.params.keys()]);
      for (const [k, v] of set.params) assert.deepEqual(loaded.set.params.get(k), v, `param ${k}`);
      assert.deepEqual(saveHookState(loaded.set), saveHookState(set), 'method state (hooks.saveState)');
      // Every tensor the file holds (parameters, hook state, shared projections): saving the loaded adapter writes the same file.
      const again = tmp(`${c.name}-again`);
      saveAdapter(again, loaded.set, { baseModel: 'use', adapterName: 'mine' });
      const [first, second] = [readAdapter(dir, 'mine'), readAdapter(again, 'mine')];
      assert.deepEqual(second.config, first.config);
      assert.deepEqual(second.tensors, first.tensors);
      assert.equal(maxAbsDiff(await run(model, loaded.set), await run(model, set)), 0);
      if (c.residualInit) {
        // PiSSA/OLoRA → LoRA on save: r×2, alpha×2, loads on the *original* base as a plain LoRA.
        for (const v of set.params.values()) for (let i = 0; i < v.length; i += 7) v[i] += 0.01; // "trained"
        const conv = tmp(`${c.name}-conv`);
        saveAdapter(conv, set, { baseModel: 'use', convertToLora: true });
        const cfg = JSON.parse(fs.readFileSync(path.join(conv, 'adapter_config.json'), 'utf8'));
        assert.equal(cfg.r, 2 * (tc.config.r as number));
        assert.equal(cfg.init_lora_weights, true);
        const plain = loadPeftAdapter(model, conv, { warn: () => {} });
        assert.equal(plain.set.baseOverrides.size, 0);
        assert.ok(maxAbsDiff(await run(model, plain.set), await run(model, set)) < 1e-4, 'converted adapter must give the same outputs');
      }
    });

    test(`[${c.name}] training moves the adapter's tensors${fixed.length ? ` (but ${fixed.join(', ')})` : ''} and the head only`, async () => {
      const set = mk(3);
      for (const s of fixed) assert.ok([...set.params.keys()].some((k) => k.endsWith(`.${s}`)), `frozenInTraining names '${s}', which no tensor of the adapter ends with`);
      const weights = new Map([...model.weights].map(([k, v]) => [k, Float32Array.from(v.data)]));
      const init = copyAll(set.params), overrides = copyAll(set.baseOverrides);
      const t = new ClassificationTrainer(model, set, 2, { epochs: 1, lr: tc.lr, batchSize: 2, seed: 1, warmupRatio: 0, buckets: [16] });
      const head = copyAll(t.head);
      const data = ids.map((x, i) => ({ ids: x, label: i % 2 }));
      await t.fit(data, data.slice(0, 2));
      await t.release();
      for (const [k, v] of model.weights) assert.deepEqual(v.data, weights.get(k), `frozen weight ${k} changed`);
      for (const [k, v] of set.baseOverrides) assert.deepEqual(v, overrides.get(k), `residual base ${k} changed`);
      for (const [k, v] of set.params) {
        if (fixed.some((s) => k.endsWith(`.${s}`))) assert.deepEqual(v, init.get(k), `${k} is kept frozen by the method, but training moved it`);
        else assert.ok(maxAbsDiff(v, init.get(k)!) > 0, `adapter tensor ${k} did not train`);
      }
      for (const [k, v] of t.head) assert.ok(maxAbsDiff(v, head.get(k)!) > 0, `head tensor ${k} did not train`);
    });

    // Every task of the one loop, on its own model family: the method must train on each (its hooks, its state, dropout-free).
    if (!c.variant) {
      test(`[${c.name}] a short training run on each task kind lowers the loss (${SUPERVISED_TASK_KINDS.join(', ')})`, async () => {
        const falls: string[] = [];
        for (const kind of SUPERVISED_TASK_KINDS) {
          const { task, data, model: m, targets } = taskCase(kind);
          const set = new AdapterSet(c.method, c.method.schema.parse(tc.config), m.sites, m.weights, { targetModules: targets ?? tc.targetModules ?? DEFAULT_TARGETS, headNames: m.headNames, seed: 2 });
          const r = await fit(task, set, { train: data }, { epochs: 4, lr: tc.lr, batchSize: 2, seed: 4, warmupRatio: 0, schedule: 'constant', maxGradNorm: 1, threads: 1 });
          const [first, last] = [r.epochLosses[0], r.epochLosses[r.epochLosses.length - 1]];
          assert.ok(Number.isFinite(last) && last < first, `${kind}: mean training loss per epoch ${r.epochLosses.map((l) => l.toFixed(4)).join(' → ')}`);
          falls.push(`${kind} ${first.toFixed(3)}→${last.toFixed(3)}`);
        }
        assert.equal(falls.length, SUPERVISED_TASK_KINDS.length);
      });
    }

    const multi = c.residualInit
      ? 'a residual-init adapter is refused beside another'
      : `switch, disable, delete; ${tc.combine ? 'weighted combination' : 'combination refused'}, ${tc.mixedBatches ? 'mixed batch' : 'mixed batches refused'}`;
    test(`[${c.name}] several adapters: ${multi}`, async () => {
      const pm = new PeftModel(model, { threads: 2 });
      if (c.residualInit) {
        // Its residual base would be one model's weights among several: it is served beside others once converted to LoRA (checked above).
        pm.addAdapter('plain', mk(4, { init_lora_weights: false }));
        assert.throws(() => pm.addAdapter('residual', mk(5)), /changes the base weights/);
        await pm.release();
        return;
      }
      const a = mk(4), b = mk(5, tc.other);
      const [outA, outB] = [await run(model, a), await run(model, b)];
      assert.ok(maxAbsDiff(outA, outB) > 1e-4, 'the two adapters must differ, or switching proves nothing');
      pm.addAdapter('a', a);
      pm.addAdapter('b', b);
      assert.equal(maxAbsDiff(await outOf(pm), outA), 0, 'the first adapter is active');
      pm.setAdapter('b');
      assert.equal(maxAbsDiff(await outOf(pm), outB), 0);
      pm.disableAdapters();
      assert.ok(maxAbsDiff(await outOf(pm), baseOut) < 1e-6);
      pm.enableAdapters();
      assert.equal(maxAbsDiff(await outOf(pm), outB), 0, 'enabling again serves the active adapter');
      if (tc.combine) {
        // 'cat' combination == merging k·(0.7·ΔW_a + 0.3·ΔW_b), k the result's own scaling: 1, or √r when the
        // first adapter uses rsLoRA (PEFT keeps use_rslora on the combination: test/peft_real.test.ts).
        const ab = pm.addWeightedAdapter(['a', 'b'], [0.7, 0.3], 'ab', 'cat', { warn: () => {} });
        const k = loraScaling(ab.config as LoraConfig);
        pm.setAdapter('ab');
        const w: WeightMap = new Map(model.weights);
        for (const site of a.targets) {
          const base = model.weights.get(site.weightKey)!;
          const dA = a.deltaFor(site, base.data), dB = b.deltaFor(site, base.data);
          const merged = Float32Array.from(base.data);
          const m = site.outFeatures, n = site.inFeatures;
          for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) merged[site.layout === 'out_in' ? i * n + j : j * m + i] += k * (0.7 * dA[i * n + j] + 0.3 * dB[i * n + j]);
          w.set(site.weightKey, { shape: base.shape, data: merged });
        }
        assert.ok(maxAbsDiff(await outOf(pm), await run(model.withWeights(w))) < 1e-4, 'cat combination');
        // PEFT's 'linear' is defined on LoRA's A and B; other methods with factors refuse it by name.
        if (c.method.linearCombination) pm.addWeightedAdapter(['a', 'b'], [0.5, 0.5], 'lin', 'linear', { warn: () => {} });
        else assert.throws(() => pm.addWeightedAdapter(['a', 'b'], [0.5, 0.5], 'lin', 'linear'), new RegExp(c.method.name));
      } else {
        assert.throws(() => pm.addWeightedAdapter(['a', 'b'], [0.7, 0.3], 'ab', 'cat'), /cannot be combined/);
      }
      if (tc.mixedBatches) {
        // Each row equals running that row alone with its adapter (a combined one too, where there is one).
        const rows: (string | null)[] = ['a', 'b', null, tc.combine ? 'ab' : 'a'];
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
      } else {
        await assert.rejects(pm.runMixed(batch, ['a', 'b', null, 'a']), /Mixed-adapter batches stack low-rank factors of each adapter's ΔW; method '.*' has none/);
      }
      pm.setAdapter('a');
      pm.deleteAdapter('a');
      assert.equal(pm.adapters.has('a'), false);
      assert.throws(() => pm.setAdapter('a'), /No adapter named 'a'/);
      assert.equal(pm.activeAdapter, 'b', 'deleting the active adapter activates the next one');
      assert.equal(maxAbsDiff(await outOf(pm), outB), 0);
      await pm.release();
    });
  }
}
