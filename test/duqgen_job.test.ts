// lorakit duqgen end to end on a small corpus: the sampled count, one query per
// sampled document, hard negatives = the first stage's ranks 93–100 (here the
// tail of a short list) without the source document, the extractive generator
// stated in the outputs, an interrupted generation resumed to the same bytes,
// and a decoder folder writing the queries (its greedy output for the paper's
// prompt, cleaned as the official code does).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runDuqgenJob } from '../src/tasks/duqgen.ts';
import { Bm25Index } from '../src/retrieval/bm25.ts';
import { cleanGeneratedQuery, duqgenPrompt } from '../src/duqgen/generators.ts';
import { loadModel } from '../src/models/load.ts';
import { Generator } from '../src/serve/generate.ts';
import { Seq2SeqGenerator } from '../src/serve/seq2seq_generate.ts';
import { readRerankJsonl } from '../src/data/records.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-duqgen-'));
const TOPICS = ['library catalog use', 'citation analysis of journals', 'automatic indexing of documents', 'information needs of scientists', 'retrieval evaluation with relevance judgments'];
const corpusFile = path.join(tmp, 'corpus.jsonl');
const docs = Array.from({ length: 30 }, (_, i) => ({
  _id: `d${i}`,
  title: `${TOPICS[i % 5]} study ${i}`,
  text: `This paper reports on ${TOPICS[i % 5]} in setting ${i}. The method uses surveys of ${10 + i} sites. Results show trends in ${TOPICS[(i + 1) % 5]}. Further work on ${TOPICS[(i + 2) % 5]} is proposed.`,
}));
fs.writeFileSync(corpusFile, docs.map((d) => JSON.stringify(d)).join('\n') + '\n');
const opts = (out: string) => ({ corpus: corpusFile, out, clusters: 3, samples: 10, seed: 1, minChars: 0, negativesFrom: 'bm25' as const, threads: 1 });

test('extractive DUQGen: samples, one query each, negatives from the first stage\'s tail, said to be extractive', async () => {
  const out = path.join(tmp, 'a');
  const r = await runDuqgenJob(opts(out));
  assert.equal(r.sampled, 10);
  assert.equal(r.generator, 'extractive');
  const pairs = fs.readFileSync(path.join(out, 'pairs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(pairs.length, 10);
  const idx = Bm25Index.build(docs.map((d) => ({ id: d._id, text: `${d.title} ${d.text}` })));
  const byId = new Map(docs.map((d) => [d._id, d]));
  for (const p of pairs) {
    assert.equal(p.generator, 'extractive');
    assert.equal(p.query, byId.get(p.docid)!.title, 'extractive query = the title');
    assert.equal(p.positive, byId.get(p.docid)!.text, 'the title is taken out of the positive passage');
    const ranked = idx.search(p.query, 100).map((h) => h.docno);
    assert.deepEqual(p.negative_ids, ranked.slice(-8).filter((d) => d !== p.docid).slice(0, 4), 'ranks 93–100 of the top 100 (the tail of a shorter list), source excluded');
    assert.deepEqual(p.negatives, p.negative_ids.map((d: string) => `${byId.get(d)!.title} ${byId.get(d)!.text}`));
  }
  assert.equal(readRerankJsonl(path.join(out, 'pairs.jsonl')).length, 10, 'lorakit train --task rerank reads it');
  const info = JSON.parse(fs.readFileSync(path.join(out, 'info.json'), 'utf8'));
  assert.match(info.note, /no language model/);
  assert.deepEqual(info.settings.sampleSeeds, [35, 745, 10, 6534, 2]);
});

test('an interrupted generation resumes (torn last line included) to the same pairs.jsonl', async () => {
  const out = path.join(tmp, 'b');
  await runDuqgenJob(opts(out));
  const whole = fs.readFileSync(path.join(out, 'pairs.jsonl'), 'utf8');
  const partial = path.join(out, 'queries.partial.jsonl');
  const lines = fs.readFileSync(partial, 'utf8').split('\n');
  fs.writeFileSync(partial, lines.slice(0, 5).join('\n') + '\n{"docid": "d1", "que'); // a crash mid-write
  fs.rmSync(path.join(out, 'pairs.jsonl'));
  await runDuqgenJob(opts(out));
  assert.equal(fs.readFileSync(path.join(out, 'pairs.jsonl'), 'utf8'), whole);
});

test('a decoder folder writes the queries: its greedy output for the paper\'s prompt, cleaned', async () => {
  const dir = path.join(import.meta.dirname, 'fixtures/hf/llama-tiny');
  const out = path.join(tmp, 'c');
  const r = await runDuqgenJob({ ...opts(out), samples: 3, clusters: 1, generatorModel: dir, maxNewTokens: 8 });
  assert.equal(r.generator, `model:${dir}`);
  const m = await loadModel(dir, 'decoder');
  const gen = new Generator(m.model, null, { threads: 1 });
  const stop = new Set<number>(m.model.config.eosTokenIds ?? []);
  if (m.tokenizer!.eosTokenId !== undefined) stop.add(m.tokenizer!.eosTokenId);
  const queries = fs.readFileSync(path.join(out, 'queries.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(queries.length >= 1);
  for (const q of queries) {
    const d = docs.find((x) => x._id === q.docid)!;
    // 64 positions: the prompt keeps its first 56 − |tail| tokens and its "\nRelevant Query:" tail
    const tail = m.tokenizer!.encode('\nRelevant Query:', { addSpecialTokens: false });
    const ids = m.tokenizer!.encode(duqgenPrompt(`${d.title} ${d.text}`, []));
    const prompt = ids.length <= 56 ? ids : [...ids.slice(0, 56 - tail.length), ...tail];
    const res = await gen.generate(prompt, { maxNewTokens: 8, stopTokens: [...stop], doSample: false });
    assert.equal(q.text, cleanGeneratedQuery(m.tokenizer!.decode(res.tokens, { skipSpecialTokens: true })));
  }
  await gen.release();
});

test('a T5 folder writes the queries: its greedy output for the paper\'s prompt', async () => {
  const dir = path.join(import.meta.dirname, 'fixtures/hf/t5-tiny');
  const out = path.join(tmp, 'd');
  await runDuqgenJob({ ...opts(out), samples: 2, clusters: 1, generatorModel: dir, maxNewTokens: 6 });
  const m = await loadModel(dir, 'seq2seq');
  const gen = new Seq2SeqGenerator(m.model, null, { threads: 1 });
  const stop = new Set<number>(m.model.config.eosTokenIds ?? []);
  if (m.tokenizer!.eosTokenId !== undefined) stop.add(m.tokenizer!.eosTokenId);
  const queries = fs.readFileSync(path.join(out, 'queries.jsonl'), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const partial = fs.readFileSync(path.join(out, 'queries.partial.jsonl'), 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l));
  assert.equal(partial.length, 2, 'one generation per sampled document (an empty one is recorded as null)');
  for (const p of partial) {
    const d = docs.find((x) => x._id === p.docid)!;
    const [tokens] = await gen.generate([m.tokenizer!.encode(duqgenPrompt(`${d.title} ${d.text}`, []))], { maxNewTokens: 6, stopTokens: [...stop], doSample: false });
    assert.equal(p.query, cleanGeneratedQuery(m.tokenizer!.decode(tokens, { skipSpecialTokens: true })));
    if (p.query !== null) assert.ok(queries.some((q) => q.docid === p.docid && q.text === p.query));
  }
  await gen.release();
});

test('the official clean-up of a generated query', () => {
  assert.equal(cleanGeneratedQuery(' How do banks\n make money? Note: this is'), 'How do banks make money?');
  assert.equal(cleanGeneratedQuery('Example 2: Document'), null);
  assert.match(duqgenPrompt('doc', [{ document: 'D1', query: 'Q1' }]), /^Example 1:\nDocument: D1\nRelevant Query: Q1\n\nExample 2:\nDocument: doc\nRelevant Query:$/);
});

test('lorakit duqgen on the command line; bad settings are named', async () => {
  const { makeProgram } = await import('../src/cli/main.ts');
  const out = path.join(tmp, 'cli');
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => lines.push(a.join(' '));
  try {
    await makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'duqgen', '--corpus', corpusFile, '--out', out, '--clusters', '2', '--samples', '6', '--min-chars', '0', '--negatives-from', 'bm25', '--quiet']);
    await assert.rejects(makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'duqgen', '--corpus', corpusFile, '--out', out, '--clusters', '9', '--samples', '6', '--min-chars', '0', '--quiet']), /--clusters 9: give 1 ≤ K ≤ --samples \(6\)/);
    await assert.rejects(makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'duqgen', '--corpus', corpusFile, '--out', out, '--clusters', '2', '--samples', '6', '--quiet']), /0 of 30 documents have ≥ 300 characters/);
  } finally {
    console.log = log;
  }
  assert.match(lines.join('\n'), /6 documents sampled of 30 eligible .* 6 training groups/);
  assert.match(lines.join('\n'), /extractive queries \(no language model\)/);
  assert.equal(fs.readFileSync(path.join(out, 'pairs.jsonl'), 'utf8').trim().split('\n').length, 6);
});
