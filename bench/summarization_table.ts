// The extractive rows of docs/results/summarization.md: lead-k, LexRank with
// tf-idf and with sentence-encoder (bundled USE lite) similarity, on the
// DialogSum and SciTLDR sets of ../shared/data/summ (ROUGE F1 × 100, stemmed,
// best and mean over references). Run: npx tsx bench/summarization_table.ts [test|dev] [encoder thresholds...]
// --smoke: two made-up documents per set in a temporary folder (seconds; the test suite runs it).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readAllSummDocuments, documentUnits } from '../src/summarize/documents.ts';
import { IdfTable, lexRankScores, lexTokens, tfidfSimilarity, topK, type Similarity } from '../src/summarize/lexrank.ts';
import { SentenceEmbedder } from '../src/summarize/embed_similarity.ts';
import { RougeAccumulator } from '../src/summarize/evaluate.ts';

const smoke = process.argv.includes('--smoke');
const argv = process.argv.slice(2).filter((x) => x !== '--smoke');
const DATA = smoke ? smokeData() : process.env.LORAKIT_SUMM_DATA ?? path.resolve(import.meta.dirname, '../../shared/data/summ');
const split = argv[0] ?? 'test';
const encThresholds = argv.length > 1 ? argv.slice(1).map((t) => (t === 'c' ? null : Number(t))) : [null];

/** A folder shaped like ../shared/data/summ with two short made-up documents per set. */
function smokeData(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-summ-smoke-'));
  const doc = (i: number) => JSON.stringify({
    id: `d${i}`,
    document: ['#Person1#: Did the train leave on time today?', '#Person2#: No, it was late by an hour because of snow.', '#Person1#: Then we should take the bus tomorrow.', `#Person2#: Agreed, the bus at ${7 + i} is fine.`].join('\n'),
    summaries: ['The train was late because of snow, so they will take the bus.'],
  });
  for (const set of ['dialogsum', 'scitldr']) {
    fs.mkdirSync(path.join(dir, set));
    fs.writeFileSync(path.join(dir, set, 'test.jsonl'), [doc(1), doc(2)].join('\n') + '\n');
  }
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
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
