// PEFT → lorakit against real Hugging Face PEFT 0.20: the folders PEFT's own
// save_pretrained wrote and the outputs PEFT gives with them after
// PeftModel.from_pretrained (unmerged logits, merge_and_unload's weights and
// logits), made by tools/reference/peft_real.py on the tiny HF fixtures
// (test/fixtures/peft_real/peft/, committed: CI needs no torch). Every case:
// lorakit loads the folder (no warning but the ones named here), gives PEFT's
// logits (1e-4; BERT's last hidden state too), and merges to PEFT's merged
// weights (1e-5) and logits (1e-4). add_weighted_adapter ('linear', 'cat',
// negative weights, different scalings, rsLoRA, other ranks, embeddings):
// lorakit's addWeightedAdapter on PEFT's source folders gives PEFT's combined
// tensors (1e-6), config and outputs. PiSSA/OLoRA: lorakit's init equals
// PEFT's own A0, B0 and residual weight. AdaLoRA's own checks (ranks, 1e-5,
// lora_alpha 0, the trained adapter vs PEFT's reading): peft_real_adalora.test.ts.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterLoadError, createPeftAdapter, loadPeftAdapter, readAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { makeProgram } from '../src/cli/main.ts';
import type { Combination } from '../src/peft/combine.ts';
import { padDecoderIds, PeftModel } from '../src/serve/peft_model.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { fit } from '../src/train/loop.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';
import { caseDirs, FIX, loadRealCase, logitsDiff, mergedWeights, REAL, runCase } from './helpers/peft_real.ts';
import { maxAbsDiff } from './helpers/arrays.ts';
import { LORAKIT_CASES, writeLorakitCase } from '../tools/reference/lorakit_adapters.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-peft-real-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Warnings lorakit must give for a case (each a pattern), beside none at all for the others. */
const EXPECTED_WARNINGS: Record<string, RegExp[]> = {
  // PEFT 0.20 trains base_layer.bias with bias='lora_only' but saves none: the base biases are what the file means.
  lora_gpt2_lora_only: [/bias 'lora_only' but adapter_model.safetensors holds no biases \(4\); the base model's biases are used/],
};

for (const dir of caseDirs('peft')) {
  const name = path.basename(dir);
  test(`PEFT 0.20 → lorakit: ${name}`, async () => {
    const c = await loadRealCase(dir);
    const warnings: string[] = [];
    const { set, extraTensors } = loadPeftAdapter(c.model, path.join(dir, 'adapter'), { warn: (m) => warnings.push(m), headNames: 'headNames' in c.model ? c.model.headNames : undefined });
    const want = EXPECTED_WARNINGS[name] ?? [];
    assert.equal(warnings.length, want.length, `${c.info.what}: warnings ${JSON.stringify(warnings)}`);
    want.forEach((re, i) => assert.match(warnings[i], re));

    // Every tensor of the file is the adapter's (a BERT classifier under modules_to_save, LayerNorm biases under bias='all' too).
    assert.deepEqual([...extraTensors.keys()], []);
    const base = await runCase(c, null);
    const un = await runCase(c, set);
    assert.ok(logitsDiff(c, base.logits) > 1e-3, 'the adapter must change the outputs');
    assert.ok(logitsDiff(c, un.logits) < 1e-4, `unmerged logits max |Δ| ${logitsDiff(c, un.logits)}`);
    if (un.hidden) assert.ok(logitsDiff(c, un.hidden, 'hidden') < 1e-4, `hidden max |Δ| ${logitsDiff(c, un.hidden, 'hidden')}`);

    // merge_and_unload: the weights PEFT changed, and no others.
    const merged = set.mergeInto(c.model.weights);
    const peftMerged = mergedWeights(c);
    assert.ok(peftMerged.size > 0);
    for (const [k, ref] of peftMerged) {
      const got = merged.get(k);
      assert.ok(got, `lorakit's merge lacks '${k}'`);
      assert.ok(maxAbsDiff(got.data, ref) < 1e-5, `merged '${k}' max |Δ| ${maxAbsDiff(got.data, ref)}`);
    }
    for (const [k, w] of merged) if (!peftMerged.has(k)) assert.equal(maxAbsDiff(w.data, c.model.weights.get(k)!.data), 0, `lorakit's merge changed '${k}', PEFT's did not`);
    const mo = await runCase(c, null, merged);
    assert.ok(logitsDiff(c, mo.logits, 'logits_merged') < 1e-4, `merged logits max |Δ| ${logitsDiff(c, mo.logits, 'logits_merged')}`);
  });
}

// add_weighted_adapter: lorakit combines PEFT's own source adapters into PEFT's combined adapter.
for (const dir of caseDirs('combine').filter((d) => !path.basename(d).startsWith('source_'))) {
  const name = path.basename(dir);
  test(`PEFT 0.20 add_weighted_adapter → lorakit's addWeightedAdapter: ${name}`, async () => {
    const c = await loadRealCase(dir);
    const { sources, weights, combination_type: how } = c.info as { sources: string[]; weights: number[]; combination_type: Combination };
    const pm = new PeftModel(c.model);
    for (const s of sources) pm.loadAdapter(path.join(REAL, 'combine', `source_${s}`, 'adapter'), s, { warn: (m) => assert.fail(m) });
    const warnings: string[] = [];
    const set = pm.addWeightedAdapter(sources, weights, name, how, { warn: (m) => warnings.push(m) });

    // PEFT's combined file: the same tensors under the same keys.
    const peft = readAdapter(path.join(dir, 'adapter'));
    // PEFT's save_embedding_layers adds the (unchanged) embedding table, '<module>.base_layer.weight'.
    const tables = [...peft.tensors.keys()].filter((k) => k.endsWith('.base_layer.weight'));
    for (const k of tables) assert.equal(maxAbsDiff(peft.tensors.get(k)!.data, c.model.weights.get(k.slice('base_model.model.'.length).replace('.base_layer', ''))!.data), 0);
    assert.deepEqual([...set.params.keys()].sort(), [...peft.tensors.keys()].filter((k) => !tables.includes(k)).sort());
    for (const [k, t] of peft.tensors) {
      if (tables.includes(k)) continue;
      assert.deepEqual(set.shapes.get(k), t.shape, k);
      assert.ok(maxAbsDiff(set.params.get(k)!, t.data) < 1e-6, `${k} max |Δ| ${maxAbsDiff(set.params.get(k)!, t.data)}`);
    }
    // ... and the same config where it matters: r = lora_alpha = R, use_rslora kept from the first adapter, the modules.
    const out = saveAdapter(path.join(tmp, name), set, { baseModel: c.info.model });
    const mine = JSON.parse(fs.readFileSync(path.join(out, 'adapter_config.json'), 'utf8')), theirs = peft.config;
    for (const k of ['r', 'lora_alpha', 'use_rslora', 'rank_pattern', 'alpha_pattern', 'lora_dropout', 'fan_in_fan_out']) assert.deepEqual(mine[k], theirs[k], k);
    assert.deepEqual([...mine.target_modules].sort(), [...theirs.target_modules].sort());
    assert.equal(warnings.length, theirs.use_rslora ? 1 : 0, JSON.stringify(warnings));
    if (theirs.use_rslora) assert.match(warnings[0], new RegExp(`its own scaling is √${theirs.r}`));

    const un = await runCase(c, set);
    assert.ok(logitsDiff(c, un.logits) < 1e-4, `unmerged logits max |Δ| ${logitsDiff(c, un.logits)}`);
    const merged = set.mergeInto(c.model.weights);
    for (const [k, ref] of mergedWeights(c)) assert.ok(maxAbsDiff(merged.get(k)!.data, ref) < 1e-5, `merged '${k}' max |Δ| ${maxAbsDiff(merged.get(k)!.data, ref)}`);
    const mo = await runCase(c, null, merged);
    assert.ok(logitsDiff(c, mo.logits, 'logits_merged') < 1e-4, `merged logits max |Δ| ${logitsDiff(c, mo.logits, 'logits_merged')}`);
  });
}

// lorakit → PEFT: adapters lorakit writes deterministically (tools/reference/lorakit_adapters.ts), read by real
// PEFT 0.20 (peft_real.py --lorakit: peft.json, peft.safetensors). lorakit still writes these exact bytes, so
// PEFT's recorded reading still holds; PEFT read them without a warning; lorakit's outputs are PEFT's.
for (const name of Object.keys(LORAKIT_CASES)) {
  test(`lorakit → PEFT 0.20: ${name}`, async () => {
    const dir = path.join(REAL, 'lorakit', name);
    const again = path.join(tmp, 'lorakit', name);
    const saved = await writeLorakitCase(name, again);
    const files = fs.readdirSync(path.join(dir, 'adapter')).sort();
    assert.deepEqual(fs.readdirSync(path.join(again, 'adapter')).sort(), files);
    for (const f of files) assert.ok(fs.readFileSync(path.join(again, 'adapter', f)).equals(fs.readFileSync(path.join(dir, 'adapter', f))), `${f} is not what lorakit wrote when PEFT read it`);
    const seen = JSON.parse(fs.readFileSync(path.join(dir, 'peft.json'), 'utf8'));
    assert.deepEqual(seen.warnings, [], 'PEFT warned reading the folder');
    assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'adapter', 'adapter_config.json'), 'utf8')).lorakit, undefined, "no key PEFT does not know in adapter_config.json");

    const c = await loadRealCase(dir, 'peft.safetensors');
    const { set } = loadPeftAdapter(c.model, path.join(dir, 'adapter'), { warn: (m) => assert.fail(m), headNames: 'headNames' in c.model ? c.model.headNames : undefined });
    const un = await runCase(c, set);
    assert.ok(logitsDiff(c, (await runCase(c, null)).logits) > 1e-3, 'the adapter must change the outputs');
    assert.ok(logitsDiff(c, un.logits) < 1e-4, `logits max |Δ| ${logitsDiff(c, un.logits)}`);
    if (un.hidden) assert.ok(logitsDiff(c, un.hidden, 'hidden') < 1e-4, `hidden max |Δ| ${logitsDiff(c, un.hidden, 'hidden')}`);
    // ... and they are the outputs of the adapter lorakit had in memory when it saved the folder (AdaLoRA, whose
    // save may drop triplets: test/peft_real_adalora.test.ts).
    if (!LORAKIT_CASES[name].allocate) assert.ok(logitsDiff(c, (await runCase(c, saved)).logits) < 1e-4, `PEFT vs the adapter lorakit saved: logits max |Δ| ${logitsDiff(c, (await runCase(c, saved)).logits)}`);
    const merged = set.mergeInto(c.model.weights);
    const peftMerged = mergedWeights(c);
    for (const [k, ref] of peftMerged) assert.ok(maxAbsDiff(merged.get(k)!.data, ref) < 1e-5, `merged '${k}' max |Δ| ${maxAbsDiff(merged.get(k)!.data, ref)}`);
    for (const [k, w] of merged) if (!peftMerged.has(k)) assert.equal(maxAbsDiff(w.data, c.model.weights.get(k)!.data), 0, `lorakit's merge changed '${k}', PEFT's did not`);
    assert.ok(logitsDiff(c, (await runCase(c, null, merged)).logits, 'logits_merged') < 1e-4);
  });
}

test("FourierFT's ifft2_norm (not a PEFT field): the file holds PEFT's equivalent spectrum, lorakit_config.json the norm; lorakit reads back its own parametrization", async () => {
  const c = await loadRealCase(path.join(REAL, 'lorakit', 'fourierft_llama_ortho'), 'peft.safetensors');
  const json = { peft_type: 'FOURIERFT', n_frequency: 30, scaling: 3, target_modules: ['q_proj', 'down_proj'], lorakit: { ifft2_norm: 'ortho' } };
  const { set } = createPeftAdapter(c.model, json, { seed: 3 });
  assert.equal(set.config.ifft2_norm, 'ortho');
  const warnings: string[] = [];
  const dir = saveAdapter(path.join(tmp, 'ortho'), set, { baseModel: 'x', warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /ifft2_norm = "ortho" is not a PEFT field: adapter_model\.safetensors holds the same adapter in PEFT's terms/);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')).ifft2_norm, undefined);
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'lorakit_config.json'), 'utf8')).ifft2_norm, 'ortho');
  // In the file: c·√(mn) per module (ortho's 1/√(mn) over backward's 1/(mn)).
  const file = readAdapter(dir).tensors;
  for (const site of set.targets) {
    const key = `base_model.model.${site.name}.fourierft_spectrum`, k = Math.sqrt(site.outFeatures * site.inFeatures);
    const mine = set.params.get(key)!, stored = file.get(key)!.data;
    for (let i = 0; i < mine.length; i++) assert.ok(Math.abs(stored[i] - k * mine[i]) <= 1e-6 * Math.abs(k * mine[i]));
  }
  const back = loadPeftAdapter(c.model, dir, { warn: (m) => assert.fail(m) }).set;
  assert.equal(back.config.ifft2_norm, 'ortho');
  for (const [key, v] of set.params) assert.ok(maxAbsDiff(back.params.get(key)!, v) < 1e-6, key);
  assert.ok(maxAbsDiff((await runCase(c, back)).logits, (await runCase(c, set)).logits) < 1e-5);
});

// PiSSA / OLoRA: lorakit's init on the same weights is PEFT's own (pissa_init: A = diag(√(S_r/s))·Vh_r,
// B = U_r·diag(√(S_r/s)); olora_init: B = Q[:, :r], A = R[:r]; W_res = W − s·B·A), each rank-one component
// up to the sign SVD and QR leave free (A_k and B_:k flip together), and the same residual weight.
for (const name of ['pissa_llama', 'pissa_rslora_llama', 'olora_llama']) {
  test(`${name}: lorakit's init equals PEFT's A0, B0 and residual weight`, async () => {
    const c = await loadRealCase(path.join(REAL, 'peft', name));
    const { set } = createPeftAdapter(c.model, c.info.init_config, { seed: 0 });
    assert.equal(set.targets.length, c.info.init_config.target_modules.length * 2);
    for (const site of set.targets) {
      const ref = (k: string) => c.expected.get(`init.${site.name}.${k}`)!;
      const A = set.initialParams.get(`base_model.model.${site.name}.lora_A.weight`)!, B = set.initialParams.get(`base_model.model.${site.name}.lora_B.weight`)!;
      const A0 = ref('lora_A').data, B0 = ref('lora_B').data;
      const [r, n] = ref('lora_A').shape, m = site.outFeatures;
      let worst = 0;
      for (let k = 0; k < r; k++) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += A[k * n + j] * A0[k * n + j];
        const sign = dot < 0 ? -1 : 1;
        for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(sign * A[k * n + j] - A0[k * n + j]));
        for (let i = 0; i < m; i++) worst = Math.max(worst, Math.abs(sign * B[i * r + k] - B0[i * r + k]));
      }
      assert.ok(worst < 1e-4, `${site.name}: A, B max |Δ| ${worst} (up to each component's sign)`);
      const res = set.baseOverrides.get(site.weightKey)!;
      assert.ok(maxAbsDiff(res, ref('residual').data) < 1e-5, `${site.name}: residual max |Δ| ${maxAbsDiff(res, ref('residual').data)}`);
    }
  });
}

test("PEFT's RandLoRA file repeats the shared projections under every module: a copy that differs is refused; a tensor no method or model knows is reported, not dropped silently", async () => {
  const src = path.join(REAL, 'peft', 'randlora_llama', 'adapter');
  const c = await loadRealCase(path.dirname(src));
  const t = readAdapter(src).tensors;
  const write = (name: string, edit: (k: string, v: { shape: number[]; data: Float32Array }) => Float32Array | null, extra: Record<string, { shape: number[]; data: Float32Array }> = {}) => {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync(path.join(src, 'adapter_config.json'), path.join(dir, 'adapter_config.json'));
    const out: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {};
    for (const [k, v] of t) {
      const d = edit(k, v);
      if (d) out[k] = { dtype: 'F32', shape: v.shape, data: d };
    }
    for (const [k, v] of Object.entries(extra)) out[k] = { dtype: 'F32', ...v };
    writeSafetensors(path.join(dir, 'adapter_model.safetensors'), out, { format: 'pt' });
    return dir;
  };
  const odd = 'base_model.model.model.layers.1.mlp.up_proj.randlora_B';
  const bad = write('randlora-odd-copy', (k, v) => (k === odd ? v.data.map((x, i) => (i === 5 ? x + 1 : x)) : v.data));
  assert.throws(() => loadPeftAdapter(c.model, bad, { warn: () => {} }), (e: Error) => e instanceof AdapterLoadError && e.message.includes(odd) && e.message.includes('base_model.randlora_B'));
  // Copies alone (no base_model.randlora_A/B) are the shared pair.
  const copiesOnly = write('randlora-copies-only', (k, v) => (k.startsWith('base_model.randlora_') ? null : v.data));
  const withCopies = loadPeftAdapter(c.model, copiesOnly, { warn: (m) => assert.fail(m) }).set;
  assert.ok(logitsDiff(c, (await runCase(c, withCopies)).logits) < 1e-4);
  const stray = write('randlora-stray', (_k, v) => v.data, { 'base_model.model.model.layers.0.mlp.up_proj.something_else': { shape: [2], data: new Float32Array(2) } });
  const warnings: string[] = [];
  loadPeftAdapter(c.model, stray, { warn: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /'base_model\.model\.model\.layers\.0\.mlp\.up_proj\.something_else' \[2\] is neither a tensor of this adapter's method nor a weight of this model: ignored/);
});

test("bias='all' trains every bias of the model as PEFT does (LayerNorms too, read through the models' tensor hook); the frozen weights stay", async () => {
  const c = await loadRealCase(path.join(REAL, 'peft', 'lora_gpt2_bias_all'));
  const model = c.model as DecoderModel;
  const { set } = createPeftAdapter(model, { peft_type: 'LORA', r: 2, lora_alpha: 4, fan_in_fan_out: true, bias: 'all', target_modules: ['c_attn'] }, { seed: 1, headNames: model.headNames });
  const lnBias = 'base_model.model.transformer.h.0.ln_1.bias', attnBias = 'base_model.model.transformer.h.0.attn.c_attn.base_layer.bias';
  // Every 1-D bias weight of GPT-2 (not the 4-D attention mask buffer some checkpoints carry).
  const biases = [...model.weights].filter(([k, t]) => k.endsWith('.bias') && t.shape.length === 1).length;
  assert.equal(set.baseCopyKeys().length, biases);
  const before = new Map([...set.params].map(([k, v]) => [k, Float32Array.from(v)]));
  const frozen = new Map([...model.weights].map(([k, v]) => [k, Float32Array.from(v.data)]));
  const ids = (c.gold.input_ids as number[][]).map((row, b) => row.filter((_, t) => c.gold.attention_mask[b][t] === 1));
  await fit(new CausalLmTask(model, { padId: 0 }), set, { train: ids.map((x) => ({ ids: x, promptLength: 1 })) }, { epochs: 2, lr: 1e-2, batchSize: 2, seed: 1, warmupRatio: 0, schedule: 'constant', threads: 1 });
  for (const k of [lnBias, attnBias, 'base_model.model.transformer.ln_f.bias']) assert.ok(maxAbsDiff(set.params.get(k)!, before.get(k)!) > 1e-4, `${k} trained`);
  for (const [k, v] of model.weights) assert.equal(maxAbsDiff(v.data, frozen.get(k)!), 0, `frozen '${k}' moved`);
  // Saved under PEFT's keys and read back into the same copies.
  const dir = saveAdapter(path.join(tmp, 'bias-all'), set, { baseModel: c.info.model });
  const back = loadPeftAdapter(model, dir, { warn: (m) => assert.fail(m), headNames: model.headNames }).set;
  for (const [k, v] of set.params) assert.equal(maxAbsDiff(back.params.get(k)!, v), 0, k);
});

test("as a user would: PeftModel.loadAdapter + run on PEFT's folders (Llama, GPT-2 bias='all', T5, GPT-2 AdaLoRA) gives PEFT's logits; mergeAndUnload gives PEFT's merged weights", async () => {
  for (const name of ['lora_llama_patterns', 'lora_gpt2_bias_all', 'lora_t5', 'adalora_gpt2']) {
    const c = await loadRealCase(path.join(REAL, 'peft', name));
    const pm = new PeftModel(c.model, { threads: 1 });
    pm.loadAdapter(path.join(c.dir, 'adapter'), 'user', { warn: (m) => assert.fail(m) });
    const ids = c.gold.input_ids as number[][], mask = c.gold.attention_mask as number[][];
    const batch = { ids: BigInt64Array.from(ids.flat(), BigInt), mask: Float32Array.from(mask.flat()), B: ids.length, T: ids[0].length };
    const dec = c.gold.decoder_input_ids as number[][] | undefined;
    const out = await pm.run(batch, dec && padDecoderIds(dec));
    assert.ok(logitsDiff(c, out.data as Float32Array) < 1e-4, `${name}: logits max |Δ| ${logitsDiff(c, out.data as Float32Array)}`);
    const merged = pm.mergeAndUnload();
    for (const [k, ref] of mergedWeights(c)) assert.ok(maxAbsDiff(merged.get(k)!.data, ref) < 1e-5, `${name}: merged '${k}'`);
    await pm.release();
  }
});

test("as a user would: `lorakit merge` of PEFT's folders (GPT-2 bias='all', BERT SEQ_CLS classifier, Llama DoRA, BERT SEQ_CLS AdaLoRA) writes PEFT's merge_and_unload weights", async () => {
  const log = console.log;
  console.log = () => {};
  try {
    for (const name of ['lora_gpt2_bias_all', 'lora_bert_seq_cls', 'dora_llama', 'adalora_bert_seq_cls']) {
      const c = await loadRealCase(path.join(REAL, 'peft', name));
      const out = path.join(tmp, `merged-${name}`);
      await makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'merge', '--model', path.join(FIX, 'hf', c.modelName), '--adapter', path.join(c.dir, 'adapter'), '--out', out]);
      const file = readSafetensors(path.join(out, 'model.safetensors')).tensors;
      const peftMerged = mergedWeights(c);
      for (const [k, ref] of peftMerged) assert.ok(maxAbsDiff(file.get(k)!.data as Float32Array, ref) < 1e-5, `${name}: '${k}'`);
      const base = readSafetensors(path.join(FIX, 'hf', c.modelName, 'model.safetensors')).tensors;
      for (const [k, t] of file) if (!peftMerged.has(k) && base.has(k)) assert.equal(maxAbsDiff(t.data as Float32Array, base.get(k)!.data as Float32Array), 0, `${name}: '${k}' changed, PEFT's did not`);
    }
  } finally {
    console.log = log;
  }
});

test("a folder written by an earlier lorakit (runtime_config, the lorakit block inside adapter_config.json) still loads, and re-saves in the layout PEFT reads without a warning", async () => {
  const c = await loadRealCase(path.join(REAL, 'lorakit', 'dora_llama'), 'peft.safetensors');
  const old = path.join(tmp, 'old-layout');
  fs.mkdirSync(old, { recursive: true });
  const cfg = JSON.parse(fs.readFileSync(path.join(c.dir, 'adapter', 'adapter_config.json'), 'utf8'));
  for (const k of ['peft_version', 'ensure_weight_tying', 'use_bdlora', 'arrow_config', 'lora_ga_config', 'velora_config', 'alora_invocation_tokens', 'monteclora_config']) delete cfg[k];
  Object.assign(cfg, { runtime_config: { ephemeral_gpu_offload: false }, lorakit: { method: 'dora', seed: 3, labels: ['a', 'b'] } });
  fs.writeFileSync(path.join(old, 'adapter_config.json'), JSON.stringify(cfg, null, 2));
  fs.copyFileSync(path.join(c.dir, 'adapter', 'adapter_model.safetensors'), path.join(old, 'adapter_model.safetensors'));
  const loaded = loadPeftAdapter(c.model, old, { warn: (m) => assert.fail(m) });
  assert.equal(loaded.set.method.name, 'dora');
  assert.deepEqual(loaded.peft.lorakit, { method: 'dora', seed: 3, labels: ['a', 'b'] });
  assert.ok(logitsDiff(c, (await runCase(c, loaded.set)).logits) < 1e-4);
  const again = saveAdapter(path.join(tmp, 'old-resaved'), loaded.set, { baseModel: c.info.model, peftConfig: loaded.peft });
  const written = JSON.parse(fs.readFileSync(path.join(again, 'adapter_config.json'), 'utf8'));
  assert.equal(written.lorakit, undefined);
  assert.equal(written.runtime_config, undefined);
  assert.equal(written.peft_version, '0.20.0');
  assert.deepEqual(readAdapter(again).config.lorakit, { method: 'dora', seed: 3, labels: ['a', 'b'] });
  // The same PEFT fields as the folder PEFT read without a warning (lorakit/dora_llama).
  assert.deepEqual(Object.keys(written).sort(), Object.keys(JSON.parse(fs.readFileSync(path.join(c.dir, 'adapter', 'adapter_config.json'), 'utf8'))).sort());
});
