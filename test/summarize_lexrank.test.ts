// LexRank against a NumPy transcription of Erkan & Radev that solves for the
// stationary vector directly (tools/reference/lexrank_numpy.py), and the
// LexRank rows of ../shared/data/summ/README.md (DialogSum k=2, SciTLDR k=1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bowSimilarity, denseCosine, IdfTable, lexRankScores, lexTokens, salienceOrder, tfidfSimilarity, topK } from '../src/summarize/lexrank.ts';
import { documentUnits } from '../src/summarize/documents.ts';
import { rougeScoreMulti } from '../src/summarize/rouge.ts';
import { summDataMissing, summDocuments } from './helpers/summ_data.ts';

interface Case { name: string; sentences?: string[]; embeddings?: number[][]; similarity: 'tfidf' | 'bow' | 'dense'; idf_documents?: string[][]; stopwords?: string[]; threshold: number | null; damping: number; scores: number[] }

test('LexRank scores equal the NumPy transcription to 1e-6 (tf-idf, bag of words without stopwords, dense; threshold and continuous; two dampings)', () => {
  const { cases } = JSON.parse(fs.readFileSync(path.resolve(import.meta.dirname, 'fixtures/lexrank_numpy.json'), 'utf8')) as { cases: Case[] };
  assert.ok(cases.length >= 13);
  for (const c of cases) {
    let S;
    if (c.similarity === 'dense') {
      const E = c.embeddings!, dim = E[0].length;
      S = denseCosine(Float64Array.from(E.flat()), E.length, dim);
    } else {
      const toks = c.sentences!.map(lexTokens);
      S = c.similarity === 'tfidf' ? tfidfSimilarity(toks, c.idf_documents ? IdfTable.fromDocuments(c.idf_documents) : undefined) : bowSimilarity(toks, new Set(c.stopwords));
    }
    const p = lexRankScores(S, { threshold: c.threshold, damping: c.damping });
    const worst = Math.max(...c.scores.map((s, i) => Math.abs(s - p[i])));
    assert.ok(worst < 1e-6, `${c.name}: max |Δ| ${worst}`);
    assert.ok(Math.abs(p.reduce((a, x) => a + x, 0) - 1) < 1e-9, `${c.name}: scores sum to 1`);
  }
});

test('selection: top k in document order, ties to the earlier sentence, all sentences when k ≥ N; bad options say what is wrong', () => {
  assert.deepEqual(topK([0.1, 0.4, 0.2, 0.4], 2), [1, 3]);
  assert.deepEqual(topK([0.3, 0.3, 0.3], 2), [0, 1]);
  assert.deepEqual(topK([0.5, 0.2], 5), [0, 1]);
  assert.deepEqual(salienceOrder([0.1, 0.4, 0.2, 0.4]), [1, 3, 2, 0]);
  assert.deepEqual([...lexRankScores([])], []);
  assert.throws(() => lexRankScores([Float64Array.of(1)], { damping: 2 }), /damping/);
  assert.throws(() => lexRankScores([Float64Array.of(1, 0)]), /row 0 has 2 entries, expected 1/);
  // A sentence with no tokens is a dangling node: uniform row, the walk still converges.
  const p = lexRankScores(tfidfSimilarity([['a', 'b'], [], ['a', 'c']]));
  assert.ok(p.every((x) => x > 0));
});

test('LexRank rows of ../shared/data/summ/README.md (tf-idf, idf over the file\'s documents, t = 0.1, d = 0.15), to the 0.01 printed', { skip: summDataMissing }, async () => {
  const run = async (file: string, k: number) => {
    const docs = await summDocuments(file);
    const units = docs.map((d) => documentUnits(d, 'lines'));
    const idf = IdfTable.fromDocuments(units.map((u) => u.flatMap(lexTokens)));
    const out: Record<string, number[]> = {};
    for (const aggregate of ['max', 'mean'] as const) {
      const sum = [0, 0, 0];
      docs.forEach((d, i) => {
        const u = units[i];
        const pick = topK(lexRankScores(tfidfSimilarity(u.map(lexTokens), idf)), k).map((j) => u[j]).join('\n');
        const r = rougeScoreMulti(d.summaries!, pick, ['rouge1', 'rouge2', 'rougeL'], { aggregate });
        sum[0] += r.rouge1.fmeasure; sum[1] += r.rouge2.fmeasure; sum[2] += r.rougeL.fmeasure;
      });
      out[aggregate] = sum.map((s) => +((100 * s) / docs.length).toFixed(2));
    }
    return out;
  };
  assert.deepEqual(await run('dialogsum/test.jsonl', 2), { max: [31.59, 10.2, 24.83], mean: [26.36, 6.38, 20.02] });
  assert.deepEqual(await run('scitldr/test.jsonl', 1), { max: [34.73, 13.86, 27.17], mean: [25.35, 6.88, 19.01] });
  assert.deepEqual((await run('dialogsum/dev.jsonl', 2)).max, [28.29, 7.5, 21.95]);
});
