// BM25 speed on CISI (1,460 documents): build, save, load, and 100 queries ×
// top 100, the median of 5 rounds in one process; and the same search through
// `lorakit index` / `lorakit search` as a user runs them (process start included).
//
//   npx tsx bench/bm25_speed.ts        → bench/BM25_SPEED.md
//   npx tsx bench/bm25_speed.ts --smoke  (40 made-up documents, 5 queries, printed only: seconds; the test suite runs it)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Bm25Index } from '../src/retrieval/bm25.ts';
import { docText, readCorpus, readQueries } from '../src/retrieval/corpus.ts';

const smoke = process.argv.includes('--smoke');
const D = smoke ? smokeCollection() : path.resolve(import.meta.dirname, '../../shared/data/ir/cisi');

/** A tiny BEIR-style collection in a temporary folder, for --smoke. */
function smokeCollection(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'bm25-smoke-'));
  process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  const words = ['library', 'index', 'retrieval', 'query', 'document', 'citation', 'journal', 'catalog', 'search', 'term'];
  const text = (i: number) => Array.from({ length: 12 }, (_, k) => words[(i * 7 + k * 3) % words.length]).join(' ');
  fs.writeFileSync(path.join(d, 'corpus.jsonl'), Array.from({ length: 40 }, (_, i) => JSON.stringify({ _id: `d${i}`, title: `doc ${i}`, text: text(i) })).join('\n') + '\n');
  fs.writeFileSync(path.join(d, 'queries.jsonl'), Array.from({ length: 5 }, (_, i) => JSON.stringify({ _id: `q${i}`, text: `${words[i]} ${words[i + 3]}` })).join('\n') + '\n');
  return d;
}
const corpus = readCorpus(path.join(D, 'corpus.jsonl'));
const queries = readQueries(path.join(D, 'queries.jsonl')).slice(0, 100);
const docs = corpus.map((d) => ({ id: d.id, text: docText(d) }));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bm25-speed-'));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (f: () => void) => {
  const t = performance.now();
  f();
  return performance.now() - t;
};
const build: number[] = [], save: number[] = [], load: number[] = [], search: number[] = [];
for (let r = 0; r < 5; r++) {
  let idx!: Bm25Index;
  build.push(ms(() => (idx = Bm25Index.build(docs))));
  save.push(ms(() => idx.save(path.join(tmp, 'idx'))));
  let back!: Bm25Index;
  load.push(ms(() => (back = Bm25Index.load(path.join(tmp, 'idx')))));
  search.push(ms(() => queries.forEach((q) => back.search(q.text, 100))));
}
const cli = path.resolve(import.meta.dirname, '../src/cli/main.ts'), tsx = path.resolve(import.meta.dirname, '../node_modules/.bin/tsx');
const wall = (args: string[]) => {
  const t = performance.now();
  execFileSync(tsx, [cli, ...args], { stdio: 'pipe' });
  return performance.now() - t;
};
const qfile = path.join(tmp, 'q100.jsonl');
fs.writeFileSync(qfile, queries.map((q) => JSON.stringify({ _id: q.id, text: q.text })).join('\n') + '\n');
const cliIndex = wall(['index', '--corpus', path.join(D, 'corpus.jsonl'), '--out', path.join(tmp, 'cli-idx'), '--quiet']);
const cliSearch = wall(['search', '--index', path.join(tmp, 'cli-idx'), '--queries', qfile, '--top', '100', '--out', path.join(tmp, 'run.trec'), '--quiet']);
const load1 = os.loadavg()[0];
const md = [
  '# BM25 speed (CISI: 1,460 documents, 100 queries × top 100)',
  '',
  `\`npx tsx bench/bm25_speed.ts\` (${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, 1-minute load ${load1.toFixed(1)} from other engineers' runs). Median of 5 rounds in one process:`,
  '',
  '| step | ms |',
  '| --- | --- |',
  `| build the index (analyze 1,460 documents, postings) | ${median(build).toFixed(1)} |`,
  `| save (index.json + postings.bin) | ${median(save).toFixed(1)} |`,
  `| load | ${median(load).toFixed(1)} |`,
  `| 100 queries × top 100 | ${median(search).toFixed(1)} (${(median(search) / 100).toFixed(2)} per query) |`,
  '',
  `As a user runs it (a new Node process each, tsx compiling the sources): \`lorakit index\` ${(cliIndex / 1000).toFixed(2)} s, \`lorakit search --top 100\` over 100 queries ${(cliSearch / 1000).toFixed(2)} s.`,
];
if (!smoke) {
  fs.mkdirSync(path.resolve(import.meta.dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.resolve(import.meta.dirname, 'BM25_SPEED.md'), md.join('\n') + '\n');
}
console.log(md.join('\n'));
