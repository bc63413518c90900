// lorakit merge / export-onnx: the exported ONNX of a LoRA-merged model runs in
// plain onnxruntime-node (no lorakit code) with outputs equal to lorakit's
// unmerged adapter (1e-4); a weighted merge of two adapters equals W0 + Σ wᵢ·ΔWᵢ.
// USE (embeddings, a lorakit head's logits) and BERT-family folders (their own
// head's logits, last_hidden_state); decoders: test/peft_decoder.test.ts.
import { describe, test, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { makeProgram } from '../src/cli/main.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import type { EncoderModel } from '../src/models/types.ts';
import { saveAdapter } from '../src/peft/adapter_files.ts';
import { loadMergedWeights } from '../src/peft/export.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { bertWithGoldenLora, unmergedExportOutput } from './helpers/bert_lora.ts';
import { loadEncoderModel } from '../src/models/hf_registry.ts';
import type { BertModel } from '../src/models/bert.ts';
import { readSafetensors } from '../src/io/safetensors.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

let model: EncoderModel;
let ids: number[][];
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-export-'));
before(async () => {
  model = await loadUseEncoder();
  const tok = UseTokenizer.fromVocabFile();
  ids = ['An instant classic with a clever script.', 'Awful.', 'The soundtrack alone is worth the ticket.'].map((t) => tok.encode(t));
});

const adapter = (seed: number, alpha = 8) => new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: alpha, init_lora_weights: false }), model.sites, model.weights, { targetModules: ['qkv', 'conv1'], seed });

test('lorakit merge + export-onnx: plain onnxruntime-node reproduces the unmerged adapter (1e-4)', async () => {
  const set = adapter(11);
  const aDir = tmp(), mDir = tmp(), onnxFile = path.join(tmp(), 'model.onnx');
  saveAdapter(aDir, set, { baseModel: 'use' });
  await makeProgram().parseAsync(['node', 'lorakit', 'merge', '--model', 'use', '--adapter', aDir, '--out', mDir]);
  assert.ok(fs.existsSync(path.join(mDir, 'model.safetensors')));
  await makeProgram().parseAsync(['node', 'lorakit', 'export-onnx', '--model', mDir, '--out', onnxFile]);

  const batch = padBatch(ids);
  const pm = new PeftModel(model, { threads: 2 });
  pm.addAdapter('a', set);
  const ours = (await pm.run(batch)).data as Float32Array;
  pm.disableAdapters();
  const base = (await pm.run(batch)).data as Float32Array;
  await pm.release();

  // Plain onnxruntime: int64 ids and mask, nothing from lorakit.
  const session = await ort.InferenceSession.create(onnxFile);
  assert.deepEqual([...session.inputNames].sort(), ['attention_mask', 'input_ids']);
  assert.deepEqual([...session.outputNames], ['embeddings']);
  const mask = BigInt64Array.from(batch.mask, (x) => BigInt(x));
  const res = await session.run({
    input_ids: new ort.Tensor('int64', batch.ids, [batch.B, batch.T]),
    attention_mask: new ort.Tensor('int64', mask, [batch.B, batch.T]),
  });
  const theirs = res.embeddings.data as Float32Array;
  assert.ok(maxAbsDiff(ours, base) > 1e-3, 'the adapter must change outputs');
  assert.ok(maxAbsDiff(theirs, ours) < 1e-4, `exported vs lorakit max |Δ| ${maxAbsDiff(theirs, ours)}`);
  await session.release();
});

test('lorakit merge --weights 0.7,0.3 writes W0 + 0.7·ΔW_A + 0.3·ΔW_B', async () => {
  const a = adapter(1), b = adapter(2, 3);
  const [da, db, out] = [tmp(), tmp(), tmp()];
  saveAdapter(da, a, { baseModel: 'use' });
  saveAdapter(db, b, { baseModel: 'use' });
  await makeProgram().parseAsync(['node', 'lorakit', 'merge', '--adapter', da, '--adapter', db, '--weights', '0.7,0.3', '--out', out]);
  const { weights } = loadMergedWeights(out);
  const site = a.targets[0];
  const w0 = model.weights.get(site.weightKey)!.data;
  const dA = a.deltaFor(site, w0), dB = b.deltaFor(site, w0);
  const got = weights.get(site.weightKey)!.data;
  const m = site.outFeatures, n = site.inFeatures;
  let err = 0;
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) err = Math.max(err, Math.abs(got[j * m + i] - (w0[j * m + i] + 0.7 * dA[i * n + j] + 0.3 * dB[i * n + j])));
  assert.ok(err < 1e-5, `max |Δ| ${err}`);
  await assert.rejects(makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'merge', '--adapter', da, '--weights', '0.7,0.3', '--out', out]), /1 adapters but 2 weights/);
});

test('export-onnx of an adapter trained with a head (lorakit train) outputs logits equal to lorakit’s classifier (1e-4)', async () => {
  const { buildClassifierGraph, initHead, HEAD_W, HEAD_B } = await import('../src/train/classifier.ts');
  const set = adapter(5);
  const head = initHead(model.hiddenSize, 3, 7);
  const aDir = tmp(), onnxFile = path.join(tmp(), 'clf.onnx');
  saveAdapter(aDir, set, {
    baseModel: 'use',
    modulesToSave: new Map([
      [HEAD_W, { shape: [3, model.hiddenSize], data: head.get(HEAD_W)! }],
      [HEAD_B, { shape: [3], data: head.get(HEAD_B)! }],
    ]),
  });
  await makeProgram().parseAsync(['node', 'lorakit', 'export-onnx', '--model', 'use', '--adapter', aDir, '--out', onnxFile]);

  const batch = padBatch(ids);
  const cg = await CompiledGraph.compile(buildClassifierGraph(model, set, head, 3, 'eval').graph, { threads: 2 });
  const feeds: Record<string, { data: any; dims: number[] }> = {
    input_ids: { data: batch.ids, dims: [batch.B, batch.T] },
    attention_mask: { data: batch.mask, dims: [batch.B, batch.T] },
    [HEAD_W]: { data: head.get(HEAD_W)!, dims: [3, model.hiddenSize] },
    [HEAD_B]: { data: head.get(HEAD_B)!, dims: [3] },
  };
  for (const [k, v] of set.params) feeds[k] = { data: v, dims: set.shapes.get(k)! };
  const ours = (await cg.run(feeds, ['logits'])).logits.data as Float32Array;
  await cg.release();

  const session = await ort.InferenceSession.create(onnxFile);
  assert.deepEqual([...session.outputNames], ['logits', 'embeddings']);
  const res = await session.run({
    input_ids: new ort.Tensor('int64', batch.ids, [batch.B, batch.T]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(batch.mask, (x) => BigInt(x)), [batch.B, batch.T]),
  });
  assert.deepEqual(res.logits.dims, [batch.B, 3]);
  assert.ok(maxAbsDiff(res.logits.data as Float32Array, ours) < 1e-4, `exported logits vs lorakit max |Δ| ${maxAbsDiff(res.logits.data as Float32Array, ours)}`);
  await session.release();
});

// BERT-family Hugging Face folders with a PEFT LoRA (the PyTorch reference's, tools/reference/hf_bert_family.py):
// the folder's own head as `logits` [B, C], or `last_hidden_state` [B, T, H].
describe('export-onnx of BERT-family folders (plain onnxruntime-node)', () => {
  const cli = (...args: string[]) => makeProgram().exitOverride().parseAsync(['node', 'lorakit', ...args]);
  const ortRun = async (file: string, b: { ids: BigInt64Array; mask: Float32Array; B: number; T: number }) => {
    const session = await ort.InferenceSession.create(file);
    try {
      assert.deepEqual([...session.inputNames].sort(), ['attention_mask', 'input_ids']);
      const res = await session.run({
        input_ids: new ort.Tensor('int64', b.ids, [b.B, b.T]),
        attention_mask: new ort.Tensor('int64', BigInt64Array.from(b.mask, (x) => BigInt(x)), [b.B, b.T]),
      });
      return { names: [...session.outputNames], res };
    } finally {
      await session.release();
    }
  };

  for (const name of ['bert', 'roberta', 'distilbert']) {
    test(`${name}: merged LoRA exports logits [B, C] and last_hidden_state [B, T, H] equal to lorakit’s unmerged adapter (1e-4)`, async () => {
      const { dir, gd, model: m, set, batch: b } = await bertWithGoldenLora(name);
      const aDir = tmp();
      saveAdapter(aDir, set, { baseModel: name });
      const [C, H] = [gd.logits.length / b.B, m.hiddenSize];
      const log = console.log;
      console.log = () => {};
      try {
        const logitsFile = path.join(tmp(), 'clf.onnx'), hiddenFile = path.join(tmp(), 'hidden.onnx'), baseFile = path.join(tmp(), 'base.onnx');
        await cli('export-onnx', '--model', dir, '--adapter', aDir, '--out', logitsFile);
        await cli('export-onnx', '--model', dir, '--adapter', aDir, '--output', 'last_hidden_state', '--out', hiddenFile);
        await cli('export-onnx', '--model', dir, '--output', 'last_hidden_state', '--out', baseFile);

        const clf = await ortRun(logitsFile, b);
        assert.deepEqual(clf.names, ['logits']);
        assert.deepEqual(clf.res.logits.dims, [b.B, C]);
        const ours = await unmergedExportOutput(m, set, 'logits', b);
        const got = clf.res.logits.data as Float32Array;
        assert.ok(maxAbsDiff(got, ours) < 1e-4, `logits: exported vs lorakit max |Δ| ${maxAbsDiff(got, ours)}`);
        // RoBERTa/DistilBERT goldens use token_type_ids 0 (BERT's have 1s, which the two-input export leaves out): PyTorch's LoRA logits directly.
        if (name !== 'bert') assert.ok(maxAbsDiff(got, gd.lora_logits) < 1e-4, `logits vs PyTorch max |Δ| ${maxAbsDiff(got, gd.lora_logits)}`);

        const hid = await ortRun(hiddenFile, b);
        assert.deepEqual(hid.names, ['last_hidden_state']);
        assert.deepEqual(hid.res.last_hidden_state.dims, [b.B, b.T, H]);
        const oursH = await unmergedExportOutput(m, set, 'last_hidden_state', b);
        assert.ok(maxAbsDiff(hid.res.last_hidden_state.data as Float32Array, oursH) < 1e-4);
        const base = (await ortRun(baseFile, b)).res.last_hidden_state.data as Float32Array;
        assert.ok(maxAbsDiff(base, oursH) > 1e-3, 'the adapter must change the hidden states');
        if (name !== 'bert') {
          const cls = Array.from({ length: b.B * H }, (_, i) => base[Math.floor(i / H) * b.T * H + (i % H)]);
          assert.ok(maxAbsDiff(cls, gd.last_hidden_state_cls) < 1e-4, `base [CLS] states vs PyTorch max |Δ| ${maxAbsDiff(cls, gd.last_hidden_state_cls)}`);
        }
      } finally {
        console.log = log;
      }
    });
  }

  test('export-onnx --output last_hidden_state on use, logits without a head: errors that say what to use', async () => {
    await assert.rejects(cli('export-onnx', '--model', 'use', '--output', 'last_hidden_state', '--out', path.join(tmp(), 'x.onnx')), /needs a token-level encoder.*--output embeddings/);
    await assert.rejects(cli('export-onnx', '--model', 'use', '--output', 'logits', '--out', path.join(tmp(), 'x.onnx')), /needs a classification head/);
  });
});

test('merge of a bf16 and of a sharded BERT folder: one float32 model.safetensors under the source names, torch_dtype float32; reloads with the unmerged logits (1e-4)', async () => {
  for (const name of ['bert-bf16', 'bert-sharded']) {
    const dir = path.join(new URL('./fixtures/hf/', import.meta.url).pathname, name);
    const m = (await loadEncoderModel(dir)).model as BertModel;
    const set = new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 8, init_lora_weights: false }), m.sites, m.weights, { targetModules: ['query', 'value', 'dense'], seed: 3 });
    const [aDir, out] = [tmp(), tmp()];
    saveAdapter(aDir, set, { baseModel: name });
    const log = console.log;
    console.log = () => {};
    try {
      await makeProgram().parseAsync(['node', 'lorakit', 'merge', '--model', dir, '--adapter', aDir, '--out', out]);
    } finally {
      console.log = log;
    }
    const srcKeys = fs.readdirSync(dir).filter((f) => f.endsWith('.safetensors')).flatMap((f) => [...readSafetensors(path.join(dir, f), { upcast: false }).tensors.keys()]);
    const merged = readSafetensors(path.join(out, 'model.safetensors'), { upcast: false }).tensors;
    assert.deepEqual([...merged.keys()].sort(), srcKeys.sort(), name);
    for (const t of merged.values()) assert.equal(t.dtype, 'F32');
    assert.ok(!fs.existsSync(path.join(out, 'model.safetensors.index.json')));
    assert.equal(JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')).torch_dtype, 'float32');
    const b = padBatch([[2, 20, 97, 26, 3], [2, 52, 3]]);
    const reloaded = (await loadEncoderModel(out)).model;
    const got = await unmergedExportOutput(reloaded as BertModel, null, 'logits', b);
    const want = await unmergedExportOutput(m, set, 'logits', b);
    assert.ok(maxAbsDiff(want, await unmergedExportOutput(m, null, 'logits', b)) > 1e-3, 'the adapter must change the logits');
    assert.ok(maxAbsDiff(got, want) < 1e-4, `${name}: merged vs unmerged max |Δ| ${maxAbsDiff(got, want)}`);
  }
});
