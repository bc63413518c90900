// PEFT lifecycle for decoder LMs (GPT-2 Conv1D, Llama, Qwen2, Mistral) and
// seq2seq (T5, BART) Hugging Face folders:
//   - `lorakit merge` writes a Hugging Face folder (the source's tensor names,
//     float32, config + tokenizer) that reloads with the unmerged adapter's
//     logits (1e-4) and the PyTorch reference's LoRA loss (tools/reference/hf_*.py);
//   - `lorakit export-onnx` of a decoder runs in plain onnxruntime-node with
//     the unmerged adapter's LM logits [B, T, V] (1e-4);
//   - PeftModel over a decoder: load/set/disable/delete, and a mixed-adapter
//     batch whose rows equal each row run alone with its adapter.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as ort from 'onnxruntime-node';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { makeProgram } from '../src/cli/main.ts';
import { Graph } from '../src/graph/ir.ts';
import { readSafetensors, writeSafetensors } from '../src/io/safetensors.ts';
import { plainLinear, type DecoderModel } from '../src/models/decoder.ts';
import { loadModel } from '../src/models/hf_registry.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import type { Seq2SeqModel } from '../src/models/seq2seq.ts';
import { buildSeq2SeqGraph, seq2seqFeeds } from '../src/train/tasks/seq2seq.ts';
import type { LinearFn } from '../src/models/types.ts';
import { saveAdapter } from '../src/peft/adapter_files.ts';
import { padBatch, PeftModel, type TokenBatch } from '../src/serve/peft_model.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { maxAbsDiff } from './helpers/arrays.ts';
import { labelCrossEntropy } from './helpers/label_loss.ts';
import { goldenAdapters, type GoldenLora } from './helpers/golden_lora.ts';
import { seq2seqLogitsGraph } from './helpers/seq2seq_logits.ts';

const FIXTURES = new URL('./fixtures/hf/', import.meta.url).pathname;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-peft-dec-'));
const cli = (...args: string[]) => makeProgram().exitOverride().parseAsync(['node', 'lorakit', ...args]);
const quiet = <T>(fn: () => Promise<T>) => async () => {
  const log = console.log;
  console.log = () => {};
  try {
    return await fn();
  } finally {
    console.log = log;
  }
};

interface Golden { input_ids: number[][]; attention_mask: number[][]; labels: number[][]; decoder_input_ids?: number[][]; lora: GoldenLora; lora_loss: number }
const golden = (name: string): Golden => JSON.parse(fs.readFileSync(path.join(FIXTURES, name, 'golden.json'), 'utf8'));
const goldenBatch = (g: Golden): TokenBatch => ({ B: g.input_ids.length, T: g.input_ids[0].length, ids: BigInt64Array.from(g.input_ids.flat(), BigInt), mask: Float32Array.from(g.attention_mask.flat()) });
const realSeqs = (g: Golden) => g.input_ids.map((row, b) => row.filter((_, t) => g.attention_mask[b][t] === 1));

async function decoderLogits(model: DecoderModel, batch: TokenBatch, set?: AdapterSet): Promise<Float32Array> {
  const pm = new PeftModel(model, { threads: 2 });
  if (set) pm.addAdapter('x', set);
  const out = (await pm.run(batch)).data as Float32Array;
  await pm.release();
  return out;
}

/** A copy of the GPT-2 fixture saved as GPT2Model does: no `transformer.` prefix (the merged folder must keep these names). */
function bareGpt2Copy(): string {
  const src = path.join(FIXTURES, 'gpt2-tiny'), dir = tmp();
  const t = readSafetensors(path.join(src, 'model.safetensors')).tensors;
  writeSafetensors(path.join(dir, 'model.safetensors'), new Map([...t].map(([k, v]) => [k.replace(/^transformer\./, ''), { dtype: 'F32' as const, shape: v.shape, data: v.data }])), { format: 'pt' });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  return dir;
}

const sortedKeys = (file: string) => [...readSafetensors(file, { upcast: false }).tensors.keys()].sort();

for (const name of ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'mistral-tiny']) {
  describe(`${name}: merge + export-onnx`, () => {
    const gold = golden(name);
    const batch = goldenBatch(gold);
    const src = name === 'gpt2-tiny' ? bareGpt2Copy() : path.join(FIXTURES, name);
    let model: DecoderModel, set: AdapterSet, aDir: string, unmerged: Float32Array;
    before(async () => {
      model = await loadDecoder(src);
      set = goldenAdapters(model, gold);
      aDir = tmp();
      saveAdapter(aDir, set, { baseModel: name, taskType: 'CAUSAL_LM' });
      unmerged = await decoderLogits(model, batch, set);
    });

    test('merged folder: source tensor names in float32, config + tokenizer; reloads with the unmerged logits (1e-4) and PyTorch’s LoRA loss', quiet(async () => {
      const out = tmp();
      await cli('merge', '--model', src, '--adapter', aDir, '--out', out);
      assert.deepEqual(sortedKeys(path.join(out, 'model.safetensors')), sortedKeys(path.join(src, 'model.safetensors')));
      for (const t of readSafetensors(path.join(out, 'model.safetensors'), { upcast: false }).tensors.values()) assert.equal(t.dtype, 'F32');
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
      const merged = await loadDecoder(out);
      const got = await decoderLogits(merged, batch);
      const base = await decoderLogits(model, batch);
      assert.ok(maxAbsDiff(unmerged, base) > 1e-3, 'the adapter must change the logits');
      assert.ok(maxAbsDiff(got, unmerged) < 1e-4, `merged vs unmerged max |Δ| ${maxAbsDiff(got, unmerged)}`);
      const loss = labelCrossEntropy(got, gold.labels, model.config.vocabSize, 1);
      assert.ok(Math.abs(loss - gold.lora_loss) < 1e-4 * Math.max(1, gold.lora_loss), `merged loss ${loss} vs PyTorch ${gold.lora_loss}`);
      if (name === 'gpt2-tiny') {
        // Conv1D (fan_in_fan_out): the file's weight is [in, out], so W'[j][i] = W0[j][i] + s·(B·A)[i][j].
        const key = 'h.0.attn.c_attn.weight';
        const W0 = readSafetensors(path.join(src, 'model.safetensors')).tensors.get(key)!.data as Float32Array;
        const W1 = readSafetensors(path.join(out, 'model.safetensors')).tensors.get(key)!.data as Float32Array;
        const p = gold.lora.params, A = p['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'], B = p['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight'];
        const [r, n] = A.shape, m = B.shape[0], s = gold.lora.lora_alpha / gold.lora.r;
        let err = 0;
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
          let d = 0;
          for (let k = 0; k < r; k++) d += B.data[i * r + k] * A.data[k * n + j];
          err = Math.max(err, Math.abs(W1[j * m + i] - (W0[j * m + i] + s * d)));
        }
        assert.ok(err < 1e-5, `Conv1D merge max |Δ| ${err}`);
      }
    }));

    test('export-onnx: plain onnxruntime-node gives the unmerged adapter’s LM logits [B, T, V] (1e-4)', quiet(async () => {
      const file = path.join(tmp(), 'lm.onnx');
      await cli('export-onnx', '--model', src, '--adapter', aDir, '--out', file);
      const session = await ort.InferenceSession.create(file);
      try {
        assert.deepEqual([...session.inputNames].sort(), ['attention_mask', 'input_ids']);
        assert.deepEqual([...session.outputNames], ['logits']);
        const res = await session.run({
          input_ids: new ort.Tensor('int64', batch.ids, [batch.B, batch.T]),
          attention_mask: new ort.Tensor('int64', BigInt64Array.from(batch.mask, (x) => BigInt(x)), [batch.B, batch.T]),
        });
        assert.deepEqual(res.logits.dims, [batch.B, batch.T, model.config.vocabSize]);
        const d = maxAbsDiff(res.logits.data as Float32Array, unmerged);
        assert.ok(d < 1e-4, `exported vs lorakit max |Δ| ${d}`);
      } finally {
        await session.release();
      }
    }));
  });
}

describe('merge: weights, refusals', () => {
  const llama = path.join(FIXTURES, 'llama-tiny');
  let model: DecoderModel;
  const randomLora = (m: DecoderModel, targets: string[], seed: number, alpha = 8) =>
    new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: alpha, init_lora_weights: false }), m.sites, m.weights, { targetModules: targets, headNames: m.headNames, seed });
  before(async () => {
    model = await loadDecoder(llama);
  });

  test('--weights 0.7,0.3 on a decoder writes W0 + 0.7·ΔW_A + 0.3·ΔW_B', quiet(async () => {
    const a = randomLora(model, ['q_proj', 'down_proj'], 1), b = randomLora(model, ['q_proj'], 2, 3);
    const [da, db, out] = [tmp(), tmp(), tmp()];
    saveAdapter(da, a, { baseModel: 'llama-tiny' });
    saveAdapter(db, b, { baseModel: 'llama-tiny' });
    await cli('merge', '--model', llama, '--adapter', da, '--adapter', db, '--weights', '0.7,0.3', '--out', out);
    const got = readSafetensors(path.join(out, 'model.safetensors')).tensors;
    for (const site of a.targets) {
      const W0 = model.weights.get(site.weightKey)!.data;
      // ΔW = s·B·A from the raw parameters (not through the method's deltaWeight).
      const delta = (set: AdapterSet, w: number) => {
        if (!set.isTarget(site.name)) return new Float32Array(W0.length);
        const p = set.siteParams(site), r = 4, s = ((set.config as { lora_alpha: number }).lora_alpha) / r, n = site.inFeatures, m = site.outFeatures;
        const d = new Float32Array(m * n);
        for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let k = 0; k < r; k++) d[i * n + j] += w * s * p['lora_B.weight'][i * r + k] * p['lora_A.weight'][k * n + j];
        return d;
      };
      const dA = delta(a, 0.7), dB = delta(b, 0.3);
      const W1 = got.get(site.weightKey)!.data as Float32Array;
      let err = 0;
      for (let i = 0; i < W0.length; i++) err = Math.max(err, Math.abs(W1[i] - (W0[i] + dA[i] + dB[i])));
      assert.ok(err < 1e-5, `${site.name}: max |Δ| ${err}`);
    }
  }));

  test('an embedding LoRA (embed_tokens, untied llama) merges into the table and reloads with the unmerged logits; on GPT-2’s tied wte it is refused', quiet(async () => {
    const set = randomLora(model, ['embed_tokens', 'q_proj'], 6);
    assert.ok(set.targets.some((t) => t.kind === 'embedding'));
    const [aDir, out] = [tmp(), tmp()];
    saveAdapter(aDir, set, { baseModel: 'llama-tiny' });
    await cli('merge', '--model', llama, '--adapter', aDir, '--out', out);
    const batch = goldenBatch(golden('llama-tiny'));
    const unmerged = await decoderLogits(model, batch, set);
    assert.ok(maxAbsDiff(unmerged, await decoderLogits(model, batch)) > 1e-3, 'the adapter must change the logits');
    const got = await decoderLogits(await loadDecoder(out), batch);
    assert.ok(maxAbsDiff(got, unmerged) < 1e-4, `merged vs unmerged max |Δ| ${maxAbsDiff(got, unmerged)}`);

    const gpt2 = await loadDecoder(path.join(FIXTURES, 'gpt2-tiny'));
    const wte = tmp();
    saveAdapter(wte, randomLora(gpt2, ['wte'], 7), { baseModel: 'gpt2-tiny' });
    await assert.rejects(cli('merge', '--model', path.join(FIXTURES, 'gpt2-tiny'), '--adapter', wte, '--out', tmp()), /adapts 'transformer\.wte', whose weight 'transformer\.wte\.weight' is tied to 'lm_head'/);
  }));

  test('refuses a tied output head (qwen2 tie_word_embeddings), NaN in ΔW, and an adapter for another model', quiet(async () => {
    const qwenDir = path.join(FIXTURES, 'qwen2-tiny');
    const qwen = await loadDecoder(qwenDir);
    const head = tmp();
    saveAdapter(head, randomLora(qwen, ['lm_head'], 3), { baseModel: 'qwen2-tiny' });
    await assert.rejects(cli('merge', '--model', qwenDir, '--adapter', head, '--out', tmp()), /adapts 'lm_head', whose weight 'model\.embed_tokens\.weight' is tied to /);
    const pmq = new PeftModel(qwen);
    pmq.loadAdapter(head, 'head');
    assert.throws(() => pmq.mergeAndUnload(), /mergeAndUnload: adapter 'head' adapts 'lm_head', whose weight 'model\.embed_tokens\.weight' is tied to /);

    const bad = randomLora(model, ['v_proj'], 4);
    bad.params.get([...bad.params.keys()].find((k) => k.endsWith('lora_B.weight'))!)![0] = NaN;
    const badDir = tmp();
    saveAdapter(badDir, bad, { baseModel: 'llama-tiny' });
    await assert.rejects(cli('merge', '--model', llama, '--adapter', badDir, '--out', tmp()), /Refusing to merge: ΔW of 'model\.layers\.0\.self_attn\.v_proj' contains NaN\/inf/);

    const gpt2 = await loadDecoder(path.join(FIXTURES, 'gpt2-tiny'));
    const other = tmp();
    saveAdapter(other, randomLora(gpt2, ['c_attn'], 5), { baseModel: 'gpt2-tiny' });
    await assert.rejects(cli('merge', '--model', llama, '--adapter', other, '--out', tmp()), /module 'transformer\.h\.0\.attn\.c_attn', which this model does not have/);
  }));
});

for (const name of ['t5-tiny', 'bart-tiny']) {
  test(`${name}: merged folder (source names, float32) reloads with the unmerged logits (1e-4) and PyTorch’s LoRA loss`, quiet(async () => {
    const src = path.join(FIXTURES, name), gold = golden(name);
    const model = (await loadModel(src)).model as Seq2SeqModel;
    const set = goldenAdapters(model, gold);
    const aDir = tmp(), out = tmp();
    saveAdapter(aDir, set, { baseModel: name, taskType: 'SEQ_2_SEQ_LM' });
    await cli('merge', '--model', src, '--adapter', aDir, '--out', out);
    assert.deepEqual(sortedKeys(path.join(out, 'model.safetensors')), sortedKeys(path.join(src, 'model.safetensors')));
    const merged = (await loadModel(out)).model as Seq2SeqModel;

    const B = gold.input_ids.length, S = gold.input_ids[0].length, T = gold.decoder_input_ids![0].length;
    const feeds = {
      input_ids: { data: BigInt64Array.from(gold.input_ids.flat(), BigInt), dims: [B, S] },
      attention_mask: { data: Float32Array.from(gold.attention_mask.flat()), dims: [B, S] },
      decoder_input_ids: { data: BigInt64Array.from(gold.decoder_input_ids!.flat(), BigInt), dims: [B, T] },
    };
    const logits = async (m: Seq2SeqModel, linear: LinearFn, params?: AdapterSet) => {
      const cg = await CompiledGraph.compile(seq2seqLogitsGraph(m, linear), { threads: 2 });
      const f: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = { ...feeds };
      for (const [k, v] of params?.params ?? []) f[k] = { data: v, dims: params!.shapes.get(k)! };
      const res = (await cg.run(f)).logits.data as Float32Array;
      await cg.release();
      return res;
    };
    const unmerged = await logits(model, set.linear({ training: false }), set);
    const got = await logits(merged, plainLinear);
    assert.ok(maxAbsDiff(unmerged, await logits(model, plainLinear)) > 1e-3, 'the adapter must change the logits');
    assert.ok(maxAbsDiff(got, unmerged) < 1e-4, `merged vs unmerged max |Δ| ${maxAbsDiff(got, unmerged)}`);

    const batch = { B, S, T: gold.labels[0].length, inputIds: feeds.input_ids.data, attentionMask: feeds.attention_mask.data, labels: BigInt64Array.from(gold.labels.flat(), BigInt) };
    const cg = await CompiledGraph.compile(buildSeq2SeqGraph(merged, null, 'eval').graph, { threads: 2 });
    const loss = Number((await cg.run(seq2seqFeeds(merged, batch, null))).loss.data[0]);
    await cg.release();
    assert.ok(Math.abs(loss - gold.lora_loss) < 1e-4 * Math.max(1, gold.lora_loss), `merged loss ${loss} vs PyTorch ${gold.lora_loss}`);
    // An encoder-decoder exports as two files (test/peft_seq2seq.test.ts): a single .onnx path is refused.
    await assert.rejects(cli('export-onnx', '--model', src, '--out', path.join(tmp(), 'x.onnx')), /encoder-decoder \(T5\/BART\) model, exported as an encoder and a decoder file: give --out a folder/);
  }));
}

for (const name of ['gpt2-tiny', 'llama-tiny']) {
  describe(`${name}: PeftModel over a decoder`, () => {
    const gold = golden(name);
    const dir = path.join(FIXTURES, name);
    let model: DecoderModel, pm: PeftModel;
    const adapterDirs: Record<string, string> = {};
    before(async () => {
      model = await loadDecoder(dir);
      adapterDirs.gold = tmp();
      saveAdapter(adapterDirs.gold, goldenAdapters(model, gold), { baseModel: name });
      const targets = name === 'gpt2-tiny' ? ['c_attn', 'c_fc', 'mlp.c_proj'] : ['q_proj', 'o_proj', 'down_proj'];
      const other = new AdapterSet(lora, lora.schema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false }), model.sites, model.weights, { targetModules: targets, headNames: model.headNames, seed: 9 });
      adapterDirs.other = tmp();
      saveAdapter(adapterDirs.other, other, { baseModel: name });
      pm = new PeftModel(model, { threads: 2 });
      pm.loadAdapter(adapterDirs.gold, 'gold');
      pm.loadAdapter(adapterDirs.other, 'other');
    });
    after(async () => pm?.release());

    test('run gives LM logits with PyTorch’s LoRA loss; disableAdapters == the base graph (1e-6); setAdapter switches', async () => {
      const batch = goldenBatch(gold);
      pm.setAdapter('gold');
      const out = await pm.run(batch);
      assert.deepEqual(out.dims, [batch.B, batch.T, model.config.vocabSize]);
      const loss = labelCrossEntropy(out.data as Float32Array, gold.labels, model.config.vocabSize, 1);
      assert.ok(Math.abs(loss - gold.lora_loss) < 1e-4 * Math.max(1, gold.lora_loss), `loss ${loss} vs PyTorch ${gold.lora_loss}`);

      const g = new Graph('base');
      const inputIds = g.input('input_ids', 'int64', ['B', 'T']), attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
      g.output('logits', model.build(g, { inputIds, attentionMask }, plainLinear).logits);
      const cg = await CompiledGraph.compile(g, { threads: 2 });
      const base = (await cg.run({ input_ids: { data: batch.ids, dims: [batch.B, batch.T] }, attention_mask: { data: batch.mask, dims: [batch.B, batch.T] } })).logits.data as Float32Array;
      await cg.release();
      pm.disableAdapters();
      assert.equal(pm.activeAdapter, null);
      assert.ok(maxAbsDiff((await pm.run(batch)).data as Float32Array, base) < 1e-6);
      pm.setAdapter('other');
      const other = (await pm.run(batch)).data as Float32Array;
      assert.ok(maxAbsDiff(other, base) > 1e-3 && maxAbsDiff(other, out.data as Float32Array) > 1e-3, 'adapters differ from each other and the base');
      const merged = await decoderLogits(model.withWeights(pm.mergeAndUnload()), batch);
      assert.ok(maxAbsDiff(merged, other) < 1e-4, `mergeAndUnload vs unmerged max |Δ| ${maxAbsDiff(merged, other)}`);
    });

    test('runMixed: each row’s logits equal that row run alone with its adapter (1e-4); deleteAdapter', async () => {
      const seqs = [...realSeqs(gold), realSeqs(gold)[1].slice(0, 3), realSeqs(gold)[0].slice(2)];
      const names = ['gold', 'other', null, 'other'];
      const batch = padBatch(seqs);
      const mixed = (await pm.runMixed(batch, names)).data as Float32Array;
      const V = model.config.vocabSize;
      for (let b = 0; b < seqs.length; b++) {
        const n = names[b];
        if (n) pm.setAdapter(n);
        else pm.disableAdapters();
        const alone = (await pm.run(padBatch([seqs[b]]))).data as Float32Array;
        const row = mixed.subarray(b * batch.T * V, (b * batch.T + seqs[b].length) * V);
        assert.ok(maxAbsDiff(row, alone) < 1e-4, `row ${b} (${n ?? 'base'}): max |Δ| ${maxAbsDiff(row, alone)}`);
      }
      pm.deleteAdapter('other');
      assert.deepEqual([...pm.adapters.keys()], ['gold']);
      await assert.rejects(pm.runMixed(padBatch(seqs.slice(0, 2)), ['gold', 'other']), /no adapter named 'other' \(loaded: gold\)/);
      pm.loadAdapter(adapterDirs.other, 'other'); // the name is free again
    });
  });
}
