// BERT / RoBERTa / DistilBERT from Hugging Face folders against the PyTorch
// reference (tools/reference/hf_bert_family.py → test/fixtures/hf/*): logits,
// pooled outputs, LoRA gradients, a short training run, the loader's weight
// formats (sharded, fp16, bf16), tokenizer and chat template, and its errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { grad } from '../src/autodiff/grad.ts';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { HfFolderError, loadHfFolder } from '../src/io/hf.ts';
import { BertModel, Pooling } from '../src/models/bert.ts';
import { HF_MODELS, loadEncoderModel, loadModel } from '../src/models/hf_registry.ts';
import type { LinearFn } from '../src/models/types.ts';
import { CompiledGraph, HostTensor } from '../src/runtime/session.ts';
import { ClassificationTrainer } from '../src/train/trainer.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIX = path.join(HERE, 'fixtures', 'hf');
const golden = (name: string) => JSON.parse(fs.readFileSync(path.join(FIX, name, 'golden.json'), 'utf8'));
const plain: LinearFn = (s, x, W, b) => (s.layout === 'in_out' ? op.linear(x, W, b) : op.linearT(x, W, b));

async function bert(name: string): Promise<BertModel> {
  const m = await loadModel(path.join(FIX, name));
  assert.ok(m.model instanceof BertModel);
  return m.model;
}

function batchFeeds(gd: any): Record<string, HostTensor> {
  const B = gd.input_ids.length, T = gd.input_ids[0].length;
  return {
    input_ids: { data: BigInt64Array.from(gd.input_ids.flat().map(BigInt)), dims: [B, T] },
    attention_mask: { data: Float32Array.from(gd.attention_mask.flat()), dims: [B, T] },
    token_type_ids: { data: BigInt64Array.from(gd.token_type_ids.flat().map(BigInt)), dims: [B, T] },
    labels: { data: BigInt64Array.from(gd.labels.map(BigInt)), dims: [B] },
  };
}

/** Logits (+ loss and gradients of every param when training) through the folder's own head. */
async function runHead(model: BertModel, gd: any, adapters: AdapterSet | null, train: boolean) {
  const g = new Graph('hf-bert-test');
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  const tokenTypeIds = g.input('token_type_ids', 'int64', ['B', 'T']);
  const linear = adapters ? adapters.linear({ training: train }) : plain;
  const logits = model.buildLogits(g, { inputIds, attentionMask, tokenTypeIds }, linear, { trainableHead: train });
  g.output('logits', logits);
  if (train) {
    const loss = g.output('loss', op.crossEntropy(logits, g.input('labels', 'int64', ['B'])));
    const params = g.params();
    grad(loss, params).forEach((gv, i) => g.output(`grad.${params[i].leaf!.name}`, gv));
  }
  const compiled = await CompiledGraph.compile(g, { threads: 1 });
  const feeds = batchFeeds(gd);
  for (const p of g.params()) feeds[p.leaf!.name] = { data: p.leaf!.data!, dims: p.shape as number[] };
  const out = await compiled.run(feeds);
  await compiled.release();
  return out;
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>) {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

for (const name of ['bert', 'roberta', 'distilbert']) {
  test(`${name}: logits of the sequence-classification head match PyTorch (1e-4)`, async () => {
    const gd = golden(name);
    const out = await runHead(await bert(name), gd, null, false);
    const d = maxAbsDiff(out.logits.data as Float32Array, gd.logits);
    assert.ok(d < 1e-4, `max |Δlogits| = ${d}`);
  });

  test(`${name}: LoRA (r=4, query/value, non-zero B) gradients match PyTorch (1e-3 relative)`, async () => {
    const gd = golden(name);
    const model = await bert(name);
    const config = lora.schema.parse({ r: gd.lora.r, lora_alpha: gd.lora.alpha });
    const adapters = new AdapterSet(lora, config, model.sites, model.weights, { targetModules: gd.lora.targets });
    assert.equal(adapters.params.size, Object.keys(gd.lora.params).length);
    for (const [k, v] of Object.entries<any>(gd.lora.params)) {
      const p = adapters.params.get(k);
      assert.ok(p, `adapter has no parameter '${k}' (has ${[...adapters.params.keys()].join(', ')})`);
      p.set(v.data);
    }
    const out = await runHead(model, gd, adapters, true);
    assert.ok(maxAbsDiff(out.logits.data as Float32Array, gd.lora_logits) < 1e-4);
    assert.ok(Math.abs(Number(out.loss.data[0]) - gd.lora_loss) < 1e-4);
    for (const [k, want] of Object.entries<number[]>(gd.grads)) {
      const got = out[`grad.${k}`];
      assert.ok(got, `no gradient output for '${k}'`);
      const e = relErr(got.data as Float32Array, want);
      assert.ok(e < 1e-3, `${k}: relative error ${e}`);
    }
  });

  test(`${name}: pooled outputs (cls, mean${name === 'bert' ? ', pooler' : ''}) match PyTorch`, async () => {
    const gd = golden(name);
    const base = await bert(name);
    const want: Record<string, number[]> = { cls: gd.last_hidden_state_cls, mean: gd.mean_pooled };
    if (gd.pooler_output) want.pooler = gd.pooler_output;
    for (const [pooling, ref] of Object.entries(want)) {
      const model = base.withPooling(pooling as Pooling);
      const g = new Graph('pool');
      const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
      const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
      const tokenTypeIds = g.input('token_type_ids', 'int64', ['B', 'T']);
      g.output('pooled', model.build(g, { inputIds, attentionMask, tokenTypeIds }, plain));
      const c = await CompiledGraph.compile(g, { threads: 1 });
      const { labels: _, ...feeds } = batchFeeds(gd);
      const out = await c.run(feeds);
      await c.release();
      const d = maxAbsDiff(out.pooled.data as Float32Array, ref);
      assert.ok(d < 1e-4, `${pooling}: max |Δ| = ${d}`);
    }
  });

  test(`${name}: tokenizer.json (WordPiece) encodes like the reference`, async () => {
    const gd = golden(name);
    const { tokenizer, model } = await loadEncoderModel(path.join(FIX, name));
    assert.ok(tokenizer);
    for (const c of gd.tokenizer_cases) assert.deepEqual(tokenizer.encode(c.text), c.ids, c.text);
    assert.ok(tokenizer.vocabSize <= (model as BertModel).config.vocab);
  });
}

test('PEFT module paths: BERT, RoBERTa and DistilBERT site names are those inside the model with its head', async () => {
  const b = await bert('bert');
  // sites[0] is the token embedding (an embedding site, PEFT's lora.Embedding), then the linear layers.
  assert.deepEqual([b.sites[0].name, b.sites[0].kind], ['bert.embeddings.word_embeddings', 'embedding']);
  assert.equal(b.sites[1].name, 'bert.encoder.layer.0.attention.self.query');
  assert.deepEqual(b.headSites.map((s) => s.name), ['classifier']);
  assert.ok(b.sites.slice(1).every((s) => s.layout === 'out_in' && s.weightKey === `${s.name}.weight`));
  const r = await bert('roberta');
  assert.equal(r.sites[3].name, 'roberta.encoder.layer.0.attention.self.value');
  assert.deepEqual(r.headSites.map((s) => s.name), ['classifier.dense', 'classifier.out_proj']);
  const d = await bert('distilbert');
  assert.equal(d.sites[1].name, 'distilbert.transformer.layer.0.attention.q_lin');
  assert.deepEqual(d.headSites.map((s) => s.name), ['pre_classifier', 'classifier']);
});

test('sharded folder (index.json + 2 shards) loads the same tensors as model.safetensors', async () => {
  const a = await loadHfFolder(path.join(FIX, 'bert'));
  const b = await loadHfFolder(path.join(FIX, 'bert-sharded'));
  assert.deepEqual([...b.weights.keys()].sort(), [...a.weights.keys()].sort());
  for (const [k, v] of a.weights) {
    assert.deepEqual(b.weights.get(k)!.shape, v.shape);
    assert.deepEqual(b.weights.get(k)!.data, v.data, k);
  }
});

for (const dt of ['f16', 'bf16']) {
  test(`${dt} weights upcast to float32: logits match PyTorch on the rounded weights`, async () => {
    const gd = golden(`bert-${dt}`);
    const model = await bert(`bert-${dt}`);
    assert.ok(model.weights.get('classifier.weight')!.data instanceof Float32Array);
    const out = await runHead(model, gd, null, false);
    const d = maxAbsDiff(out.logits.data as Float32Array, gd.logits);
    assert.ok(d < 1e-4, `max |Δlogits| = ${d}`);
  });
}

test('cross-encoder input: a sentence pair gets token_type_ids 0 / 1', async () => {
  const { tokenizer } = await loadModel(path.join(FIX, 'bert'));
  const e = tokenizer!.encodePair('hello world', 'good movie');
  assert.deepEqual(e.ids, [2, ...tokenizer!.encode('hello world', { addSpecialTokens: false }), 3, ...tokenizer!.encode('good movie', { addSpecialTokens: false }), 3]);
  assert.deepEqual(e.tokenTypeIds, [0, 0, 0, 0, 1, 1, 1]);
  assert.equal(tokenizer!.decode(tokenizer!.encode('Hello world!'), { skipSpecialTokens: true }), 'hello world!');
});

test('chat template from tokenizer_config.json is rendered with @huggingface/jinja', async () => {
  const { tokenizer } = await loadModel(path.join(FIX, 'distilbert'));
  assert.equal(tokenizer!.applyChatTemplate([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }]), '[user] hi\n[assistant] hello\n');
  const b = await loadModel(path.join(FIX, 'bert'));
  assert.equal(b.tokenizer!.hasChatTemplate, false);
});

test('a short LoRA training run (ClassificationTrainer, query/value) lowers the loss', async () => {
  const { model, tokenizer } = await loadEncoderModel(path.join(FIX, 'bert'));
  const texts = ['good movie', 'great fun', 'best story', 'love this film', 'bad plot', 'terrible acting', 'worst movie', 'boring story'];
  const data = texts.map((t, i) => ({ ids: tokenizer!.encode(t), label: i < 4 ? 1 : 0 }));
  const adapters = new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 8 }), model.sites, model.weights, { targetModules: ['query', 'value'], seed: 1 });
  assert.equal(adapters.targets.length, 4);
  const trainer = new ClassificationTrainer(model, adapters, 2, { epochs: 15, lr: 1e-2, batchSize: 8, seed: 3, threads: 1, buckets: [8] });
  const before = await trainer.evaluate(data);
  await trainer.fit(data, data);
  const after = await trainer.evaluate(data);
  await trainer.release();
  assert.ok(after.loss < before.loss * 0.8, `loss ${before.loss} → ${after.loss}`);
});

function copyFixture(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-hf-${name}-`));
  for (const f of fs.readdirSync(path.join(FIX, name))) fs.copyFileSync(path.join(FIX, name, f), path.join(dir, f));
  return dir;
}

test('error: a missing shard names the shard file and the index', async () => {
  const dir = copyFixture('bert-sharded');
  fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
  await assert.rejects(loadModel(dir), (e: Error) => {
    assert.ok(e instanceof HfFolderError);
    assert.match(e.message, /model-00002-of-00002\.safetensors/);
    assert.match(e.message, /missing shard/);
    assert.match(e.message, /model\.safetensors\.index\.json/);
    return true;
  });
});

test('error: an unsupported architecture names config.json and lists the supported model types', async () => {
  const dir = copyFixture('bert');
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'xlnet', architectures: ['XLNetForSequenceClassification'] }));
  await assert.rejects(loadModel(dir), (e: Error) => {
    assert.match(e.message, /config\.json/);
    assert.match(e.message, /unsupported model_type 'xlnet'/);
    assert.match(e.message, /XLNetForSequenceClassification/);
    for (const t of Object.keys(HF_MODELS)) assert.ok(e.message.includes(t), `lists ${t}`);
    return true;
  });
});

test('error: missing or invalid config.json names the file', async () => {
  const dir = copyFixture('bert');
  fs.writeFileSync(path.join(dir, 'config.json'), '{ not json');
  await assert.rejects(loadModel(dir), /config\.json: invalid JSON/);
  fs.rmSync(path.join(dir, 'config.json'));
  await assert.rejects(loadModel(dir), /config\.json: missing/);
});

test('error: a tokenizer larger than the vocab names tokenizer.json, config.json and both sizes', async () => {
  const dir = copyFixture('bert');
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  const tok = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
  const n = Object.keys(tok.model.vocab).length;
  tok.model.vocab['extra'] = n;
  tok.model.vocab['##extra'] = n + 1;
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tok));
  await assert.rejects(loadModel(dir), (e: Error) => {
    assert.match(e.message, /tokenizer\.json/);
    assert.match(e.message, /config\.json/);
    assert.ok(e.message.includes(`${n + 2} tokens`) && e.message.includes(`vocab_size ${cfg.vocab_size}`), e.message);
    return true;
  });
});

test('error: a weight whose shape disagrees with config.json names the weight', async () => {
  const dir = copyFixture('bert');
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: 48 }));
  await assert.rejects(loadModel(dir), /bert\.encoder\.layer\.0\.intermediate\.dense\.weight' has shape \[64,32\], expected \[48,32\]/);
});

test('CLI: lorakit train --model <hf-folder> --task classification --target-modules query,value; eval reloads the folder', async () => {
  const { spawnSync } = await import('node:child_process');
  const BIN = path.resolve(HERE, '..', 'bin', 'lorakit.js');
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '1' } });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-hf-cli-'));
  const pos = ['good movie', 'great fun', 'best story', 'love this film', 'great music', 'very good acting'];
  const neg = ['bad plot', 'terrible acting', 'worst movie', 'boring story', 'i hate this film', 'very bad music'];
  const lines = [...pos.map((t) => ({ text: t, label: 'pos' })), ...neg.map((t) => ({ text: t, label: 'neg' }))];
  const data = path.join(dir, 'x.jsonl');
  fs.writeFileSync(data, [...lines, ...lines].map((l) => JSON.stringify(l)).join('\n') + '\n');
  const out = path.join(dir, 'out');
  const model = path.join(FIX, 'bert');
  const r = run('train', '--model', model, '--task', 'classification', '--data', data, '--target-modules', 'query,value', '--epochs', '1', '--batch', '8', '--max-len', '1000', '--out', out, '--quiet', '--no-baseline');
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /bert\.encoder\.layer\.0\.attention\.self\.query/);
  assert.match(r.stdout, /--max-len 1000 is longer than .* using 128/);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter', 'adapter_config.json'), 'utf8'));
  assert.deepEqual(cfg.target_modules, ['query', 'value']);
  assert.equal(cfg.base_model_name_or_path, model);
  const e = run('eval', '--adapter', path.join(out, 'adapter'), '--data', data);
  assert.equal(e.status, 0, e.stderr + e.stdout);
  assert.match(e.stdout, /accuracy/);
  const bad = run('train', '--model', model, '--task', 'summarization', '--data', data, '--quiet');
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /argument 'summarization' is invalid\. Allowed choices are classification, causal-lm, seq2seq, rerank, embed, align, mlm/);
});
