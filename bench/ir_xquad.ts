// XQuAD-R de-en (German questions → English answer sentences): dense retrieval
// with the bundled encoder and an English task adapter alone vs stacked with a
// German language adapter (the cross-lingual Stack(language, task) with the
// language adapter swapped in at test time).
//
//  - Split: XQuAD's 240 paragraphs in groups of 5 (XQuAD's 48 articles of 5
//    paragraphs, in file order), a seeded half of the groups for training, the
//    other half for testing; only test-half questions are scored (the corpus is
//    all 1,180 English sentences).
//  - Task adapter (English only): lorakit train --task embed (in-batch
//    negatives) on en-en (question, answer sentence) pairs of the training half.
//  - Language adapter (German): lorakit train --task align on Tatoeba
//    German–English pairs (a fixed seeded 800 / 200 split; the 200 held out
//    measure bitext retrieval).
//  - Test: documents are English, encoded with the task adapter; German
//    questions with the task adapter alone, or with [German, task] stacked.
//
//   npx tsx bench/ir_xquad.ts [--work /tmp/ir_xquad]
// Writes docs/results/xquad_stack.md and bench/results/ir_xquad.json.

import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runIndexJob, runSearchJob, runEvalIrJob, encoderWithAdapters } from '../src/tasks/retrieval.ts';
import { runTrainJob } from '../src/tasks/train.ts';
import { readCorpus, readQueries } from '../src/retrieval/corpus.ts';
import { readQrels } from '../src/retrieval/trec.ts';
import { encodeTexts } from '../src/retrieval/encode.ts';
import { Rng } from '../src/util/rng.ts';

const { values: a } = parseArgs({ options: { work: { type: 'string', default: '/tmp/ir_xquad' }, threads: { type: 'string', default: '2' }, 'task-epochs': { type: 'string', default: '3' }, 'lang-epochs': { type: 'string', default: '5' }, lr: { type: 'string', default: '1e-3' }, rank: { type: 'string', default: '8' } } });
const X = path.resolve(import.meta.dirname, '../../shared/data/ir/xquad-r');
const TATOEBA = path.resolve(import.meta.dirname, '../../shared/data/parallel/tatoeba/deu-eng.tsv');
const W = a.work!;
fs.mkdirSync(W, { recursive: true });
const threads = Number(a.threads), lr = Number(a.lr);
const log = (m: string) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${m}`);
const t = () => performance.now() / 1000;

// Split by paragraph group.
const group = (docid: string) => Math.floor(Number(/-p(\d+)-s/.exec(docid)![1]) / 5);
const groups = [...Array(48).keys()];
const rng = new Rng(20240614).fork('xquad-split');
const shuffled = groups.map((g) => ({ g, r: rng.uniform() })).sort((x, y) => x.r - y.r).map((x) => x.g);
const trainGroups = new Set(shuffled.slice(0, 24));
const qrels = readQrels(path.join(X, 'en-en/qrels.tsv'));
const relOf = (q: string) => [...qrels.get(q)!.keys()][0];
const trainQ = new Set([...qrels.keys()].filter((q) => trainGroups.has(group(relOf(q)))));
const testQ = new Set([...qrels.keys()].filter((q) => !trainQ.has(q)));
const qrelsTest = path.join(W, 'qrels.test.tsv');
fs.writeFileSync(qrelsTest, 'query-id\tcorpus-id\tscore\n' + [...testQ].map((q) => `${q}\t${relOf(q)}\t1`).join('\n') + '\n');
const writeQueries = (lang: string) => {
  const f = path.join(W, `${lang}.test.queries.jsonl`);
  fs.writeFileSync(f, readQueries(path.join(X, `${lang}/queries.jsonl`)).filter((q) => testQ.has(q.id)).map((q) => JSON.stringify({ _id: q.id, text: q.text })).join('\n') + '\n');
  return f;
};
const deQueries = writeQueries('de-en'), enQueries = writeQueries('en-en');
log(`split: ${trainQ.size} training questions, ${testQ.size} test questions (24 of 48 paragraph groups each)`);

// Task adapter on English pairs of the training half.
const enCorpus = new Map(readCorpus(path.join(X, 'en-en/corpus.jsonl')).map((d) => [d.id, d.text]));
const enQ = new Map(readQueries(path.join(X, 'en-en/queries.jsonl')).map((q) => [q.id, q.text]));
const taskData = path.join(W, 'task.train.jsonl');
fs.writeFileSync(taskData, [...trainQ].map((q) => JSON.stringify({ anchor: enQ.get(q), positive: enCorpus.get(relOf(q)) })).join('\n') + '\n');
let t0 = t();
const methodConfig = { r: Number(a.rank), lora_alpha: 2 * Number(a.rank) };
fs.rmSync(path.join(W, 'task'), { recursive: true, force: true });
const task = await runTrainJob({ task: 'embed', model: 'use', data: taskData, method: 'lora', methodConfig, epochs: Number(a['task-epochs']), lr, batchSize: 32, seed: 1, out: path.join(W, 'task'), threads, checkpointEvery: 1000 });
log(`task adapter: ${task.examples.train} English pairs, loss ${task.epochLosses.map((l) => l.toFixed(3)).join(' → ')} (${(t() - t0).toFixed(0)} s)`);

// Language adapter on Tatoeba (800 train / 200 held out, seeded).
const tat = fs.readFileSync(TATOEBA, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
const tr = new Rng(7).fork('tatoeba-split');
const order = tat.map((p, i) => ({ i, r: tr.uniform() })).sort((x, y) => x.r - y.r).map((x) => x.i);
const tatTrain = order.slice(0, 800).map((i) => tat[i]), tatTest = order.slice(800).map((i) => tat[i]);
const langData = path.join(W, 'lang.train.jsonl');
fs.writeFileSync(langData, tatTrain.map(([en, de]) => JSON.stringify({ source: de, target: en })).join('\n') + '\n');
t0 = t();
fs.rmSync(path.join(W, 'lang'), { recursive: true, force: true });
const lang = await runTrainJob({ task: 'align', model: 'use', data: langData, method: 'lora', methodConfig, epochs: Number(a['lang-epochs']), lr, batchSize: 32, seed: 1, out: path.join(W, 'lang'), threads, checkpointEvery: 1000 });
log(`language adapter: ${lang.examples.train} Tatoeba pairs, loss ${lang.epochLosses.map((l) => l.toFixed(3)).join(' → ')} (${(t() - t0).toFixed(0)} s)`);

// Bitext retrieval on the 200 held-out pairs: German with/without the language adapter against English from the base model.
async function embed(adapters: string[], texts: string[]) {
  const e = await encoderWithAdapters('use', adapters, threads);
  try {
    return await encodeTexts(e.peft, e.tok, texts);
  } finally {
    await e.peft.release();
  }
}
function accuracy(A: { vectors: Float32Array; dim: number }, B: { vectors: Float32Array; dim: number }) {
  const n = A.vectors.length / A.dim;
  let hits = 0;
  for (let i = 0; i < n; i++) {
    let best = -1, bs = -Infinity;
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < A.dim; k++) s += A.vectors[i * A.dim + k] * B.vectors[j * A.dim + k];
      if (s > bs) {
        bs = s;
        best = j;
      }
    }
    if (best === i) hits++;
  }
  return hits / n;
}
const enHeld = await embed([], tatTest.map((p) => p[0]));
const deBase = await embed([], tatTest.map((p) => p[1]));
const deLang = await embed([path.join(W, 'lang/adapter')], tatTest.map((p) => p[1]));
const bitext = { base: { deToEn: accuracy(deBase, enHeld), enToDe: accuracy(enHeld, deBase) }, lang: { deToEn: accuracy(deLang, enHeld), enToDe: accuracy(enHeld, deLang) } };
log(`Tatoeba held-out bitext accuracy de→en / en→de: base ${bitext.base.deToEn} / ${bitext.base.enToDe}, with the German adapter ${bitext.lang.deToEn} / ${bitext.lang.enToDe}`);

// Retrieval.
const rows: { system: string; queries: string; docs: string; ndcg10: number; mrr10: number }[] = [];
const taskDir = path.join(W, 'task/adapter'), langDir = path.join(W, 'lang/adapter');
async function dense(name: string, lq: string, queries: string, docAdapters: string[], queryAdapters: string[], corpus = path.join(X, 'de-en/corpus.jsonl')) {
  const idx = path.join(W, `idx-${docAdapters.length ? 'task' : 'base'}-${path.basename(path.dirname(corpus))}`);
  if (!fs.existsSync(path.join(idx, 'index.json'))) await runIndexJob({ corpus, out: idx, kind: 'dense', fields: ['text'], adapters: docAdapters, threads });
  const run = path.join(W, `${name}.trec`);
  await runSearchJob({ index: idx, queries, top: 100, out: run, queryAdapters, threads });
  const e = runEvalIrJob({ qrels: qrelsTest, run, measures: ['ndcg@10', 'mrr@10'] });
  rows.push({ system: name, queries: lq, docs: docAdapters.length ? 'task' : 'base', ndcg10: e.mean['ndcg@10'], mrr10: e.mean['mrr@10'] });
  log(`${name}: nDCG@10 ${e.mean['ndcg@10'].toFixed(4)} MRR@10 ${e.mean['mrr@10'].toFixed(4)}`);
  fs.writeFileSync(path.resolve(import.meta.dirname, 'results/ir_xquad.json'), JSON.stringify({ settings: a, split: { train: trainQ.size, test: testQ.size }, bitext, rows }, null, 2) + '\n');
}
await runIndexJob({ corpus: path.join(X, 'de-en/corpus.jsonl'), out: path.join(W, 'bm25'), kind: 'bm25', fields: ['text'], tokens: 'unicode' });
await runSearchJob({ index: path.join(W, 'bm25'), queries: deQueries, top: 100, out: path.join(W, 'bm25.trec') });
{
  const e = runEvalIrJob({ qrels: qrelsTest, run: path.join(W, 'bm25.trec'), measures: ['ndcg@10', 'mrr@10'] });
  rows.push({ system: 'BM25 de-en', queries: '—', docs: '—', ndcg10: e.mean['ndcg@10'], mrr10: e.mean['mrr@10'] });
}
await dense('de-en base encoder', 'base', deQueries, [], []);
await dense('de-en German adapter only', 'lang', deQueries, [], [langDir]);
await dense('de-en English task adapter alone', 'task', deQueries, [taskDir], [taskDir]);
await dense('de-en task adapter stacked with the German adapter', 'lang + task (stacked)', deQueries, [taskDir], [langDir, taskDir]);
await dense('en-en base encoder (reference: English questions)', 'base', enQueries, [], []);
await dense('en-en English task adapter (reference: English questions)', 'task', enQueries, [taskDir], [taskDir]);

const md = [
  '# XQuAD-R de-en: an English task adapter alone vs stacked with a German language adapter',
  '',
  `Produced by \`npx tsx bench/ir_xquad.ts\` (${new Date().toISOString().slice(0, 10)}). Dense retrieval with the bundled Universal Sentence Encoder lite`,
  `(English-only pretraining), cosine over the 1,180 English answer sentences (\`text\` only), scored on the ${testQ.size} questions of the test half`,
  `(24 of XQuAD's 48 paragraph groups, seeded; the task adapter saw only the other half). nDCG@10 and MRR@10 as trec_eval -c.`,
  '',
  `- Task adapter: LoRA r ${a.rank} (α ${2 * Number(a.rank)}) on the encoder's attention and FFN projections, \`lorakit train --task embed\` (in-batch negatives, scale 20) on ${task.examples.train} English (question, answer sentence) pairs, ${a['task-epochs']} epochs, lr ${lr}, batch 32.`,
  `- German language adapter: the same LoRA shape, \`lorakit train --task align\` on ${lang.examples.train} Tatoeba pairs (German sentence → the base model's embedding of its English translation), ${a['lang-epochs']} epochs, lr ${lr}. The bundled encoder has no masked-LM head, so the masked-LM language adapters of the paper cannot be trained on it.`,
  `- Stacking: German questions go through [German adapter, task adapter] (the German LoRA merged into the base, the task LoRA on top); English documents through the task adapter only.`,
  '',
  '| system | query side | document side | nDCG@10 | MRR@10 |',
  '| --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.system} | ${r.queries} | ${r.docs} | ${r.ndcg10.toFixed(3)} | ${r.mrr10.toFixed(3)} |`),
  '',
  `Tatoeba bitext retrieval on the 200 held-out pairs (accuracy, 200 candidates): base encoder de→en ${bitext.base.deToEn.toFixed(3)}, en→de ${bitext.base.enToDe.toFixed(3)};`,
  `German queries through the language adapter (English through the base) de→en ${bitext.lang.deToEn.toFixed(3)}, en→de ${bitext.lang.enToDe.toFixed(3)}.`,
];
fs.writeFileSync(path.resolve(import.meta.dirname, '../docs/results/xquad_stack.md'), md.join('\n') + '\n');
log('done');
