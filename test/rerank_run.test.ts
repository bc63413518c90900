// lorakit rerank: the cross-encoder's scores equal an independent path (the
// PeftModel's pooled embedding of the pair with the adapter, times the saved
// score head); BERT pairs carry token_type_ids (scores equal PyTorch's pooler
// output · head on the golden batch); the CLI re-scores the top of a run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loadModel } from '../src/models/load.ts';
import { saveAdapter } from '../src/peft/adapter_files.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { Trainer } from '../src/train/loop.ts';
import { RerankTask, SCORE_B, SCORE_W, type RerankBatch, type RerankExample } from '../src/train/tasks/rerank.ts';
import { CrossEncoder } from '../src/tasks/rerank.ts';
import { pairEncoder } from '../src/tasks/train.ts';
import { readRun } from '../src/retrieval/trec.ts';
import { makeProgram } from '../src/cli/main.ts';
import { Rng } from '../src/util/rng.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-rerank-'));
const FIX = path.join(import.meta.dirname, 'fixtures/hf');

function head(H: number, seed: number) {
  const r = new Rng(seed);
  const w = Float32Array.from({ length: H }, () => r.uniformRange(-0.2, 0.2));
  return new Map([[SCORE_W, { shape: [1, H], data: w }], [SCORE_B, { shape: [1], data: Float32Array.of(0.25) }]]);
}

test('cross-encoder on the bundled encoder = PeftModel embedding of the pair · saved score head (a LoRA adapter with non-zero B)', async () => {
  const { model, tokenizer } = await loadModel('use', 'encoder');
  const set = new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 8, init_lora_weights: false }), model.sites, model.weights, { targetModules: ['qkv', 'conv1'], seed: 5 });
  const h = head(model.hiddenSize, 9);
  const dir = path.join(tmp, 'use-adapter');
  saveAdapter(dir, set, { baseModel: 'use', taskType: 'SEQ_CLS', modulesToSave: h });
  const query = 'how are library catalogs used', docs = ['Card catalogs and their users in public libraries.', 'Citation analysis of physics journals.', 'x'];
  const ce = await CrossEncoder.load('use', [dir], { threads: 1 });
  const got = await ce.score(query, docs);
  await ce.release();
  const pm = new PeftModel(model, { threads: 1 });
  pm.loadAdapter(dir, 'a', { warn: () => {} });
  const pair = pairEncoder(tokenizer!, 128);
  const emb = (await pm.run(padBatch(docs.map((d) => pair(query, d).ids)))).data as Float32Array;
  await pm.release();
  const H = model.hiddenSize, w = h.get(SCORE_W)!.data;
  docs.forEach((_, i) => {
    let s = 0.25;
    for (let j = 0; j < H; j++) s += emb[i * H + j] * w[j];
    assert.ok(Math.abs(got[i] - s) < 1e-4, `doc ${i}: ${got[i]} vs ${s}`);
  });
});

test('BERT pairs carry token_type_ids: rerank scores = PyTorch pooler output · head on the golden batch, and differ with types zeroed', async () => {
  const gd = JSON.parse(fs.readFileSync(path.join(FIX, 'bert/golden.json'), 'utf8'));
  const { model } = await loadModel(path.join(FIX, 'bert'), 'encoder');
  assert.equal(model.usesTokenTypes, true);
  const H = model.hiddenSize;
  const task = new RerankTask(model, { seed: 0 });
  const h = head(H, 3);
  task.params.get(SCORE_W)!.data.set(h.get(SCORE_W)!.data);
  task.params.get(SCORE_B)!.data.set(h.get(SCORE_B)!.data);
  const len = (m: number[]) => m.reduce((a, b) => a + b, 0);
  const ex: RerankExample = {
    pairs: gd.input_ids.map((r: number[], i: number) => r.slice(0, len(gd.attention_mask[i]))),
    types: gd.token_type_ids.map((r: number[], i: number) => r.slice(0, len(gd.attention_mask[i]))),
    labels: [1, 0, 0],
  };
  const trainer = new Trainer<RerankExample, RerankBatch>(task, null, { epochs: 1, lr: 1, batchSize: 1, seed: 0, threads: 1 });
  const scores = async (e: RerankExample) => (await trainer.run([e]))[0].out.scores.data as Float32Array;
  const got = await scores(ex);
  const w = h.get(SCORE_W)!.data;
  for (let i = 0; i < 3; i++) {
    let s = 0.25;
    for (let j = 0; j < H; j++) s += gd.pooler_output[i * H + j] * w[j];
    assert.ok(Math.abs(got[i] - s) < 1e-4, `pair ${i}: ${got[i]} vs PyTorch ${s}`);
  }
  const zero = await scores({ ...ex, types: undefined });
  assert.ok(Math.abs(zero[0] - got[0]) > 1e-4, 'segment ids change the score of a pair');
  await trainer.release();
});

test('lorakit rerank re-scores the top N of a run (cross and bi); a missing document or score head is named', async () => {
  const { model } = await loadModel('use', 'encoder');
  const set = new AdapterSet(lora, lora.schema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false }), model.sites, model.weights, { targetModules: ['qkv'], seed: 1 });
  const dir = path.join(tmp, 'a'), plain = path.join(tmp, 'plain');
  saveAdapter(dir, set, { baseModel: 'use', taskType: 'SEQ_CLS', modulesToSave: head(model.hiddenSize, 1) });
  saveAdapter(plain, set, { baseModel: 'use' });
  const corpus = path.join(tmp, 'corpus.jsonl'), queries = path.join(tmp, 'queries.jsonl'), run = path.join(tmp, 'first.trec');
  fs.writeFileSync(corpus, ['libraries and catalogs', 'physics citations', 'indexing languages', 'user studies'].map((t, i) => JSON.stringify({ _id: `d${i}`, title: '', text: t })).join('\n') + '\n');
  fs.writeFileSync(queries, JSON.stringify({ _id: 'q1', text: 'catalog use in libraries' }) + '\n');
  fs.writeFileSync(run, ['q1 Q0 d0 1 4 bm25', 'q1 Q0 d1 2 3 bm25', 'q1 Q0 d2 3 2 bm25', 'q1 Q0 d3 4 1 bm25'].join('\n') + '\n');
  const cli = (...a: string[]) => makeProgram().exitOverride().parseAsync(['node', 'lorakit', ...a]);
  const log = console.log;
  console.log = () => {};
  try {
    await cli('rerank', '--adapter', dir, '--run', run, '--queries', queries, '--corpus', corpus, '--top', '3', '--out', path.join(tmp, 'cross.trec'), '--quiet');
    await cli('rerank', '--mode', 'bi', '--run', run, '--queries', queries, '--corpus', corpus, '--top', '3', '--out', path.join(tmp, 'bi.trec'), '--quiet');
    // A stopped rerank resumes from <out>.partial: a query scored there is not scored again (its saved scores are used).
    await cli('rerank', '--adapter', dir, '--run', run, '--queries', queries, '--corpus', corpus, '--top', '3', '--out', path.join(tmp, 'resume.trec'), '--quiet');
    assert.ok(!fs.existsSync(path.join(tmp, 'resume.trec.partial')), 'the partial file goes once the run is written');
    const head = JSON.stringify({ model: 'use', adapters: [path.resolve(dir)], run: path.resolve(run), top: 3, mode: 'cross', maxLen: 128, fields: ['title', 'text'] });
    fs.writeFileSync(path.join(tmp, 'resume.trec.partial'), `${head}\n${JSON.stringify({ qid: 'q1', scores: [0.5, 9, -1] })}\n{"qid": "q2", "sco`);
    await cli('rerank', '--adapter', dir, '--run', run, '--queries', queries, '--corpus', corpus, '--top', '3', '--out', path.join(tmp, 'resume.trec'), '--quiet');
    assert.deepEqual(readRun(path.join(tmp, 'resume.trec')).get('q1')!.map((d) => [d.docno, d.score]), [['d1', 9], ['d0', 0.5], ['d2', -1]]);
    await cli('rerank', '--mode', 'bi', '--fuse', '0', '--run', run, '--queries', queries, '--corpus', corpus, '--top', '3', '--out', path.join(tmp, 'fuse0.trec'), '--quiet');
    await cli('rerank', '--mode', 'bi', '--fuse', '0.6', '--run', run, '--queries', queries, '--corpus', corpus, '--top', '3', '--out', path.join(tmp, 'fuse6.trec'), '--quiet');
    await assert.rejects(cli('rerank', '--adapter', plain, '--run', run, '--queries', queries, '--corpus', corpus, '--out', path.join(tmp, 'x.trec'), '--quiet'), /no score head/);
    fs.appendFileSync(run, 'q1 Q0 d9 5 9 bm25\n');
    await assert.rejects(cli('rerank', '--adapter', dir, '--run', run, '--queries', queries, '--corpus', corpus, '--out', path.join(tmp, 'x.trec'), '--quiet'), /document 'd9' \(query 'q1'\) is not in/);
  } finally {
    console.log = log;
  }
  // --fuse 0: the first stage's order (4, 3, 2 → 1, 0.5, 0); 0.6: 0.6·minmax(bi) + 0.4·minmax(first), by hand
  const first = readRun(path.join(tmp, 'fuse0.trec')).get('q1')!;
  assert.deepEqual(first.sort((a, b) => b.score - a.score).map((d) => [d.docno, d.score]), [['d0', 1], ['d1', 0.5], ['d2', 0]]);
  const bi = new Map(readRun(path.join(tmp, 'bi.trec')).get('q1')!.map((d) => [d.docno, d.score]));
  const lo = Math.min(...bi.values()), hi = Math.max(...bi.values());
  for (const d of readRun(path.join(tmp, 'fuse6.trec')).get('q1')!) {
    const want = 0.6 * ((bi.get(d.docno)! - lo) / (hi - lo)) + 0.4 * { d0: 1, d1: 0.5, d2: 0 }[d.docno as 'd0']!;
    assert.ok(Math.abs(d.score - want) < 1e-9, `${d.docno}: ${d.score} vs ${want}`);
  }
  for (const f of ['cross.trec', 'bi.trec']) {
    const r = readRun(path.join(tmp, f)).get('q1')!;
    assert.deepEqual(r.map((d) => d.docno).sort(), ['d0', 'd1', 'd2'], `${f}: the first stage's top 3 only`);
  }
});

test('a BERT-family folder end to end: train --task rerank (pairs with token types), then rerank with its adapter', async () => {
  const dir = path.join(FIX, 'bert');
  const data = path.join(tmp, 'bert-pairs.jsonl');
  fs.writeFileSync(data, [{ query: 'good movie', positive: 'the best film', negatives: ['bad plot', 'worst acting'] }, { query: 'great story', positive: 'love this story', negatives: ['boring music'] }].map((r) => JSON.stringify(r)).join('\n') + '\n');
  const { runTrainJob } = await import('../src/tasks/train.ts');
  const r = await runTrainJob({ task: 'rerank', model: dir, data, method: 'lora', methodConfig: { r: 2, lora_alpha: 4 }, epochs: 2, lr: 1e-2, batchSize: 2, seed: 1, out: path.join(tmp, 'bert-rr'), threads: 1, rankLoss: 'listwise' });
  const ce = await CrossEncoder.load(dir, [r.adapterDir], { threads: 1 });
  const s = await ce.score('good movie', ['the best film', 'bad plot']);
  await ce.release();
  assert.equal(s.length, 2);
  assert.ok(s.every(Number.isFinite));
  const cfg = JSON.parse(fs.readFileSync(path.join(r.adapterDir, 'adapter_config.json'), 'utf8'));
  assert.ok(cfg.modules_to_save.includes('score'), JSON.stringify(cfg.modules_to_save));
});
