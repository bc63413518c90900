// Masked-LM language adapters (lorakit train --task mlm) on a BERT folder with
// its MLM head: the head's logits and loss equal PyTorch's BertForMaskedLM on
// the golden batch (tools/reference/hf_bert_mlm.py; the decoder tied to the
// word embeddings), the masking follows DataCollatorForLanguageModeling's
// rules, and a short run lowers the validation loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { loadModel } from '../src/models/load.ts';
import type { BertModel } from '../src/models/bert.ts';
import { plainLinear } from '../src/models/linear.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { causalLmLoss } from '../src/train/tasks/causal_lm.ts';
import { maskTokens } from '../src/train/tasks/mlm.ts';
import { runTrainJob } from '../src/tasks/train.ts';
import { Rng } from '../src/util/rng.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const DIR = path.join(import.meta.dirname, 'fixtures/hf/bert-mlm');

test('MLM logits and loss equal PyTorch BertForMaskedLM (tied decoder) on the golden batch', async () => {
  const gd = JSON.parse(fs.readFileSync(path.join(DIR, 'golden.json'), 'utf8'));
  const { model } = await loadModel(DIR, 'encoder');
  const bert = model as BertModel;
  assert.equal(bert.hasMlmHead, true);
  const [B, T] = [gd.input_ids.length, gd.input_ids[0].length];
  const V = bert.config.vocab;
  const g = new Graph('mlm');
  const inputIds = g.input('input_ids', 'int64', [B, T]);
  const attentionMask = g.input('attention_mask', 'float32', [B, T]);
  const labels = g.input('labels', 'int64', [B, T]);
  const logits = bert.buildMlmLogits(g, { inputIds, attentionMask }, plainLinear);
  g.output('logits', logits);
  g.output('loss', causalLmLoss(op.reshape(logits, [B, T, V]), labels));
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const out = await cg.run({
    input_ids: { data: BigInt64Array.from(gd.input_ids.flat().map(BigInt)), dims: [B, T] },
    attention_mask: { data: Float32Array.from(gd.attention_mask.flat()), dims: [B, T] },
    labels: { data: BigInt64Array.from(gd.labels.flat().map(BigInt)), dims: [B, T] },
  });
  await cg.release();
  const d = maxAbsDiff(out.logits.data as Float32Array, gd.logits);
  assert.ok(d < 1e-4, `max |Δlogits| = ${d}`);
  assert.ok(Math.abs(Number(out.loss.data[0]) - gd.loss) < 1e-4, `loss ${out.loss.data[0]} vs PyTorch ${gd.loss}`);
});

test('masking: specials never chosen, ~15% chosen, of those ~80% [MASK], ~10% random, ~10% kept; labels −100 elsewhere', () => {
  const ids = Array.from({ length: 20000 }, (_, i) => (i % 50 === 0 ? 2 : 5 + (i % 90)));
  const { input, labels } = maskTokens(ids, { maskId: 4, specialIds: [2], vocabSize: 100 }, new Rng(3));
  let chosen = 0, masked = 0, kept = 0;
  ids.forEach((t, i) => {
    if (labels[i] === -100) {
      assert.equal(input[i], t, 'unchosen tokens are untouched');
      return;
    }
    assert.notEqual(t, 2, 'a special token is never chosen');
    assert.equal(labels[i], t);
    chosen++;
    if (input[i] === 4) masked++;
    else if (input[i] === t) kept++;
  });
  const n = ids.filter((t) => t !== 2).length;
  assert.ok(Math.abs(chosen / n - 0.15) < 0.01, `chosen ${chosen / n}`);
  assert.ok(Math.abs(masked / chosen - 0.8) < 0.03, `[MASK] ${masked / chosen}`);
  assert.ok(Math.abs(kept / chosen - 0.1) < 0.03, `kept ${kept / chosen} (random tokens can also hit the original)`);
});

test('lorakit train --task mlm: a LoRA language adapter lowers the masked-LM loss; the bundled encoder and a RoBERTa folder are refused', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-mlm-'));
  const data = path.join(dir, 'text.jsonl');
  // A tiny "language" the fixture's vocabulary covers: predictable words (the, was, very) for the adapter to learn.
  const nouns = ['movie', 'film', 'plot', 'story', 'music', 'acting', 'document', 'answer'], adjs = ['good', 'bad', 'great', 'terrible', 'boring', 'fun', 'best', 'worst'];
  const texts = nouns.flatMap((n) => adjs.map((a) => `the ${n} was very ${a}`));
  fs.writeFileSync(data, texts.map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
  const common = { task: 'mlm' as const, model: DIR, data, validation: data, method: 'lora', methodConfig: { r: 4, lora_alpha: 8 }, batchSize: 16, seed: 1, threads: 1 };
  const before = await runTrainJob({ ...common, epochs: 1, lr: 1e-12, out: path.join(dir, 'zero') });
  const after = await runTrainJob({ ...common, epochs: 12, lr: 2e-2, out: path.join(dir, 'run'), warmupRatio: 0 });
  assert.ok(after.validation!.loss < 0.8 * before.validation!.loss, `validation loss ${before.validation!.loss} → ${after.validation!.loss}`);
  await assert.rejects(runTrainJob({ ...common, model: 'use', epochs: 1, lr: 1e-3, out: path.join(dir, 'use') }), /bundled sentence encoder, which has none \(train its language adapter with --task align\)/);
  await assert.rejects(runTrainJob({ ...common, model: path.join(DIR, '../roberta'), epochs: 1, lr: 1e-3, out: path.join(dir, 'roberta') }), /no masked-LM head \(BertForMaskedLM's cls\.predictions\.\*\) \(a roberta folder: its masked-LM head is not supported yet\)/);
});

test('CLI end to end: train --task mlm, merge, rerank with --stack lang,task = the task adapter on the merged folder; a BERT folder without an MLM head and a decoder are refused', async () => {
  const { spawnSync } = await import('node:child_process');
  const BIN = path.resolve(import.meta.dirname, '..', 'bin', 'lorakit.js');
  const run = (...args: string[]) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '1' } });
    return { ...r, all: `${r.stdout}\n${r.stderr}` };
  };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-mlm-cli-'));
  const f = (n: string) => path.join(dir, n);
  const jsonl = (file: string, rows: object[]) => fs.writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const nouns = ['movie', 'film', 'plot', 'story', 'music', 'acting'], adjs = ['good', 'bad', 'great', 'terrible', 'boring', 'fun'];
  jsonl(f('text.jsonl'), nouns.flatMap((n) => adjs.map((a) => ({ text: `the ${n} was very ${a}` }))));

  // 1. The language adapter, trained on the command line; its validation loss falls over the epochs.
  const t = run('train', '--model', DIR, '--task', 'mlm', '--data', f('text.jsonl'), '--validation', f('text.jsonl'), '--method', 'lora', '--epochs', '6', '--lr', '2e-2', '--batch', '12', '--seed', '3', '--out', f('lang'), '--quiet');
  assert.equal(t.status, 0, t.all);
  const losses = [...t.stdout.matchAll(/epoch \d+: validation loss ([\d.]+)/g)].map((m) => Number(m[1]));
  assert.equal(losses.length, 6, t.stdout);
  assert.ok(losses[5] < losses[0], `validation loss per epoch ${losses.join(' → ')}`);
  const langDir = path.join(f('lang'), 'adapter');
  const cfg = JSON.parse(fs.readFileSync(path.join(langDir, 'adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.ok(fs.existsSync(path.join(langDir, 'adapter_model.safetensors')));

  // 2. Merged into the folder (its MLM head kept), the adapter lowers the masked-LM loss of the forward checked against PyTorch above.
  const mg = run('merge', '--model', DIR, '--adapter', langDir, '--out', f('merged'));
  assert.equal(mg.status, 0, mg.all);
  const maskedLoss = async (folder: string): Promise<number> => {
    const { model, tokenizer } = await loadModel(folder, 'encoder');
    const bert = model as BertModel;
    const rows = nouns.map((n, i) => tokenizer!.encode(`the ${n} was very ${adjs[i]}`));
    const T = Math.max(...rows.map((r) => r.length)), B = rows.length, V = bert.config.vocab;
    const ids = new BigInt64Array(B * T), mask = new Float32Array(B * T), labels = new BigInt64Array(B * T).fill(-100n);
    rows.forEach((r, b) => r.forEach((id, i) => {
      ids[b * T + i] = BigInt(i === 1 || i === 3 ? 4 : id); // "the" and "very" masked
      mask[b * T + i] = 1;
      if (i === 1 || i === 3) labels[b * T + i] = BigInt(id);
    }));
    const g = new Graph('mlm-loss');
    const logits = bert.buildMlmLogits(g, { inputIds: g.input('input_ids', 'int64', [B, T]), attentionMask: g.input('attention_mask', 'float32', [B, T]) }, plainLinear);
    g.output('loss', causalLmLoss(op.reshape(logits, [B, T, V]), g.input('labels', 'int64', [B, T])));
    const cg = await CompiledGraph.compile(g, { threads: 1 });
    const out = await cg.run({ input_ids: { data: ids, dims: [B, T] }, attention_mask: { data: mask, dims: [B, T] }, labels: { data: labels, dims: [B, T] } });
    await cg.release();
    return Number(out.loss.data[0]);
  };
  const [base, merged] = [await maskedLoss(DIR), await maskedLoss(f('merged'))];
  assert.ok(merged < 0.8 * base, `masked-LM loss of the base ${base}, with the language adapter merged ${merged}`);

  // 3. A task adapter trained on the base, stacked over the language adapter in lorakit rerank,
  //    scores as the task adapter alone on the folder with the language adapter merged in.
  jsonl(f('pairs.jsonl'), [{ query: 'good movie', positive: 'the movie was very good', negatives: ['the plot was very bad', 'boring music'] }, { query: 'great story', positive: 'the story was great', negatives: ['terrible acting'] }]);
  const rt = run('train', '--model', DIR, '--task', 'rerank', '--data', f('pairs.jsonl'), '--method', 'lora', '--method-option', 'init_lora_weights=false', '--epochs', '2', '--lr', '1e-2', '--batch', '2', '--out', f('task'), '--quiet');
  assert.equal(rt.status, 0, rt.all);
  const taskDir = path.join(f('task'), 'adapter');
  jsonl(f('queries.jsonl'), [{ _id: 'q1', text: 'good movie' }, { _id: 'q2', text: 'boring story' }]);
  jsonl(f('corpus.jsonl'), [{ _id: 'd1', title: '', text: 'the movie was very good' }, { _id: 'd2', title: '', text: 'the plot was very bad' }, { _id: 'd3', title: '', text: 'fun music' }]);
  fs.writeFileSync(f('run.trec'), ['q1', 'q2'].flatMap((q) => ['d1', 'd2', 'd3'].map((d, i) => `${q} Q0 ${d} ${i + 1} ${3 - i} bm25`)).join('\n') + '\n');
  const rr = (model: string, adapters: string[], out: string) => {
    const r = run('rerank', '--model', model, adapters.length > 1 ? '--stack' : '--adapter', adapters.join(','), '--run', f('run.trec'), '--queries', f('queries.jsonl'), '--corpus', f('corpus.jsonl'), '--out', f(out), '--quiet');
    assert.equal(r.status, 0, r.all);
    return new Map(fs.readFileSync(f(out), 'utf8').trim().split('\n').map((l) => l.split(/\s+/)).map((c) => [`${c[0]} ${c[2]}`, Number(c[4])]));
  };
  const stacked = rr(DIR, [langDir, taskDir], 'stacked.trec'), onMerged = rr(f('merged'), [taskDir], 'merged.trec'), alone = rr(DIR, [taskDir], 'alone.trec');
  assert.equal(stacked.size, 6);
  for (const [k, s] of stacked) assert.ok(Math.abs(s - onMerged.get(k)!) < 1e-4, `${k}: stacked ${s}, on the merged folder ${onMerged.get(k)}`);
  assert.ok([...stacked].some(([k, s]) => Math.abs(s - alone.get(k)!) > 1e-4), 'the language adapter changes the scores, or stacking proves nothing');

  // 4. Folders that cannot train masked-LM say why.
  const noHead = run('train', '--model', path.join(import.meta.dirname, 'fixtures/hf/bert'), '--task', 'mlm', '--data', f('text.jsonl'), '--out', f('x'), '--quiet');
  assert.notEqual(noHead.status, 0);
  assert.match(noHead.stderr, /no masked-LM head \(BertForMaskedLM's cls\.predictions\.\*\): --task mlm needs a BERT folder saved with its MLM head/);
  const dec = run('train', '--model', path.join(import.meta.dirname, 'fixtures/hf/gpt2-tiny'), '--task', 'mlm', '--data', f('text.jsonl'), '--out', f('y'), '--quiet');
  assert.notEqual(dec.status, 0);
  assert.match(dec.stderr, /--task mlm trains a BERT folder saved with its masked-LM head \(BertForMaskedLM\); '.*gpt2-tiny' is a decoder folder/);
});
