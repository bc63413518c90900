// The hybrid pipeline end to end on the tiny BART and T5 fixtures (random
// weights, word-level toy vocabulary): `lorakit train --task seq2seq` learns
// toy document → summary pairs, `lorakit summarize --model --adapter` runs
// LexRank ordering + budget cut + beam search, `lorakit eval-summ` scores it;
// the adapted model must beat the untrained one. The summarizer's input
// handling (budget, final end token, chunks) and its beam output against the
// generator called directly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Seq2SeqSummarizer } from '../src/summarize/hybrid.ts';
import { runEvalSummJob, runSummarizeJob } from '../src/tasks/summarize.ts';
import { Seq2SeqGenerator } from '../src/serve/seq2seq_generate.ts';

const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const ENV = { ...process.env, LORAKIT_THREADS: '1' };
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-summ-'));

// Toy documents over the fixtures' vocabulary: a theme repeated in several sentences among noise; the reference names the theme.
const THEMES: [string, string[], string][] = [
  ['king', ['the king lived there.', 'once upon a time there lived the king.', 'the king was good.'], 'the king was good'],
  ['queen', ['the queen lived there.', 'the queen was very good.', 'who is the queen?'], 'the queen was very good'],
  ['movie', ['the movie was bad.', 'this movie is not good.', 'the movie and the story was bad.'], 'the movie was bad'],
  ['music', ['the music is great.', 'you love this music.', 'the music was very great.'], 'the music is great'],
  ['film', ['the film is good.', 'it was a good film.', 'that film is very good.'], 'the film is good'],
  ['world', ['hello world.', 'the world is great.', 'what a world.'], 'hello world'],
];
const NOISE = ['what is this?', 'how was it?', 'why not.', 'there it was.'];

function docs() {
  return THEMES.map(([id, sents, ref], i) => ({ id, document: [NOISE[i % 4], ...sents, NOISE[(i + 1) % 4]].join(' '), summaries: [ref] }));
}

for (const fixture of ['bart-tiny', 't5-tiny']) {
  test(`${fixture}: train seq2seq → summarize --model --adapter (LexRank + beams) → eval-summ; the adapter beats the base model`, () => {
    const dir = tmp();
    const d = docs();
    const docsFile = path.join(dir, 'docs.jsonl');
    fs.writeFileSync(docsFile, d.map((x) => JSON.stringify(x)).join('\n') + '\n');
    const pairs = path.join(dir, 'pairs.jsonl');
    fs.writeFileSync(pairs, d.map((x) => JSON.stringify({ source: x.document, target: x.summaries[0] })).join('\n') + '\n');
    const out = path.join(dir, 'run');
    const t = run('train', '--task', 'seq2seq', '--model', FIX + fixture, '--data', pairs, '--epochs', '25', '--batch', '3', '--lr', '0.02', '--max-len', '32', '--quiet', '--out', out);
    assert.equal(t.status, 0, t.stderr);
    const score = (pred: string) => {
      const r = run('eval-summ', '--refs', docsFile, '--pred', pred, '--json', pred + '.rouge.json');
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /rougeLsum/);
      return JSON.parse(fs.readFileSync(pred + '.rouge.json', 'utf8')).scores.rouge1.fmeasure as number;
    };
    const common = ['--in', docsFile, '--extractive', 'lexrank', '--num-beams', '3', '--no-repeat-ngram-size', '3', '--max-length', '12', '--quiet'];
    const base = path.join(dir, 'base.jsonl'), adapted = path.join(dir, 'adapted.jsonl');
    let r = run('summarize', '--model', FIX + fixture, '--out', base, ...common);
    assert.equal(r.status, 0, r.stderr);
    r = run('summarize', '--model', FIX + fixture, '--adapter', path.join(out, 'adapter'), '--out', adapted, ...common);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /6 documents → .* \(encoder budget \d+ tokens\)/);
    const lines = fs.readFileSync(adapted, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.id), d.map((x) => x.id));
    assert.ok(lines.every((l) => typeof l.summary === 'string' && l.input_tokens > 0 && l.chunks === 1));
    const [b, a] = [score(base), score(adapted)];
    assert.ok(a > b + 0.2 && a > 0.3, `ROUGE-1 F: base ${b.toFixed(3)}, adapted ${a.toFixed(3)}`);
  });
}

test('the summarizer cuts inputs to the budget (keeping the end token), chunks fit, its beams equal the generator\'s on the same ids', async () => {
  const s = await Seq2SeqSummarizer.load(FIX + 'bart-tiny', { maxInputTokens: 12 });
  try {
    assert.equal(s.budget, 12);
    const long = Array.from({ length: 10 }, (_, i) => (i % 2 ? 'the king lived there.' : 'the music is very great.'));
    const ids = s.encodeUnits(long);
    assert.equal(ids.length, 12);
    const full = s.tokenizer.encode(long.join(' '));
    assert.deepEqual(ids, full.slice(0, 12)); // the fixture's tokenizer adds no end token: a plain cut
    const chunks = s.chunks(long);
    assert.ok(chunks.length > 1 && chunks.flat().length === long.length);
    for (const c of chunks) assert.ok(c.length === 1 || s.encodeUnits(c).length <= 12);
    const g = { numBeams: 3, maxLength: 8, lengthPenalty: 1.5 };
    const [viaSummarizer] = await s.generateFromIds([ids], g);
    const gen = new Seq2SeqGenerator(s.model);
    const [direct] = await gen.generate([ids], s.generateOptions(g));
    await gen.release();
    assert.equal(viaSummarizer, s.tokenizer.decode(direct, { skipSpecialTokens: true }).trim());
    const chunked = await s.summarize(long, { long: 'chunk', ...g });
    assert.equal(chunked.chunks, chunks.length);
    assert.equal(chunked.summary.split('\n').length, chunks.length);
    assert.throws(() => s.generateOptions({ maxLength: 40 }), /exceeds the model's 32 decoder positions/);
    assert.throws(() => s.generateOptions({ minLength: 9, maxLength: 8 }), /min length \(9\) must be below max length \(8\)/);
  } finally {
    await s.release();
  }
  await assert.rejects(Seq2SeqSummarizer.load(FIX + 'bart-tiny', { maxInputTokens: 64 }), /has 32 positions/);
});

test('summarize/eval-summ jobs: extractive output, errors that name the file, line and what to do', async () => {
  const dir = tmp();
  const f = path.join(dir, 'd.jsonl');
  fs.writeFileSync(f, JSON.stringify({ id: 'a', document: 'Mr. Smith met the board. The board approved the plan. The plan costs $3.5 billion. Critics of the plan spoke.', summaries: ['The board approved the plan.'] }) + '\n');
  const o = path.join(dir, 'o.jsonl');
  const r = await runSummarizeJob({ input: f, output: o, sentences: 2 });
  assert.equal(r.documents, 1);
  const line = JSON.parse(fs.readFileSync(o, 'utf8'));
  assert.equal(line.sentences.length, 2);
  assert.ok(line.summary.split('\n').every((s: string) => s.endsWith('.')));
  const e = await runEvalSummJob({ refs: f, pred: o });
  assert.ok(e.scores.rouge1.fmeasure > 0);
  fs.writeFileSync(path.join(dir, 'bad.jsonl'), '{"id": "a", "text": 3}\n');
  await assert.rejects(runSummarizeJob({ input: path.join(dir, 'bad.jsonl'), output: o }), /bad\.jsonl:1: expected a "document" \(or "text"\) string/);
  fs.writeFileSync(path.join(dir, 'p.jsonl'), '{"id": "b", "summary": "x"}\n');
  await assert.rejects(runEvalSummJob({ refs: f, pred: path.join(dir, 'p.jsonl') }), /no summary for id 'a'/);
  await assert.rejects(runSummarizeJob({ input: f, output: o, adapter: 'x' }), /--adapter needs --model/);
  await assert.rejects(runSummarizeJob({ input: path.join(dir, 'missing.jsonl'), output: o }), /missing\.jsonl: not found/);
});
