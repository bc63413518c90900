// The extractive rows of docs/results/summarization.md: lead-k, LexRank with
// tf-idf and with sentence-encoder (bundled USE lite) similarity, on the
// DialogSum and SciTLDR sets of ../shared/data/summ (ROUGE F1 × 100, stemmed,
// best and mean over references). Run: npx tsx bench/summarization_table.ts [test|dev] [encoder thresholds...]
import path from 'node:path';
import { readAllSummDocuments, documentUnits } from '../src/summarize/documents.ts';
import { IdfTable, lexRankScores, lexTokens, tfidfSimilarity, topK, type Similarity } from '../src/summarize/lexrank.ts';
import { SentenceEmbedder } from '../src/summarize/embed_similarity.ts';
import { RougeAccumulator } from '../src/summarize/evaluate.ts';

const DATA = process.env.LORAKIT_SUMM_DATA ?? path.resolve(import.meta.dirname, '../../shared/data/summ');
const split = process.argv[2] ?? 'test';
const encThresholds = process.argv.length > 3 ? process.argv.slice(3).map((t) => (t === 'c' ? null : Number(t))) : [null];
const types = ['rouge1', 'rouge2', 'rougeL', 'rougeLsum'];

const embedder = await SentenceEmbedder.load('use');
const rows: string[] = [];
for (const [set, k] of [['dialogsum', 2], ['scitldr', 1]] as const) {
  const docs = await readAllSummDocuments(path.join(DATA, set, `${split}.jsonl`));
  const units = docs.map((d) => documentUnits(d, 'lines'));
  const idf = IdfTable.fromDocuments(units.map((u) => u.flatMap(lexTokens)));
  const t0 = performance.now();
  const sims: Similarity[] = [];
  for (const u of units) sims.push(await embedder.similarity(u));
  const embedSec = (performance.now() - t0) / 1000;
  const systems: [string, (i: number) => number[]][] = [
    ['lead-1', (i) => units[i].slice(0, 1).map((_, j) => j)],
    ['lead-3', (i) => units[i].slice(0, 3).map((_, j) => j)],
    [`LexRank tf-idf, t = 0.1, k = ${k}`, (i) => topK(lexRankScores(tfidfSimilarity(units[i].map(lexTokens), idf)), k)],
    ...encThresholds.map((t) => [`LexRank USE encoder, ${t === null ? 'continuous' : `t = ${t}`}, k = ${k}`, (i: number) => topK(lexRankScores(sims[i], { threshold: t }), k)] as [string, (i: number) => number[]]),
  ];
  for (const [name, pick] of systems) {
    const max = new RougeAccumulator({ types, aggregate: 'max' }), mean = new RougeAccumulator({ types, aggregate: 'mean' });
    docs.forEach((d, i) => {
      const s = pick(i).map((j) => units[i][j]).join('\n');
      max.add(d.summaries!, s);
      mean.add(d.summaries!, s);
    });
    const f = (r: ReturnType<RougeAccumulator['result']>) => types.map((t) => (100 * r.scores[t].fmeasure).toFixed(2));
    rows.push(`| ${set} ${split} | ${name} | ${f(max.result()).join(' | ')} | ${f(mean.result()).slice(0, 3).join(' | ')} |`);
  }
  console.error(`${set}: ${docs.length} documents, ${units.flat().length} units embedded in ${embedSec.toFixed(1)} s`);
}
await embedder.release();
console.log('| set | system | R-1 max | R-2 max | R-L max | R-Lsum max | R-1 mean | R-2 mean | R-L mean |\n|---|---|---|---|---|---|---|---|---|');
console.log(rows.join('\n'));
