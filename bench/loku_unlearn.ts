// The LoKU demonstration, TOFU-style at small scale: a small Llama that
// lorakit taught a world of fictitious people (bench/build_world.ts) unlearns
// a 10% forget split (every fact of 10% of the people) with `lorakit unlearn`
// (the job, in process): LoKU's IHL + FILA against gradient ascent, gradient
// difference and IHL with PEFT's plain LoRA init, the same LoRA rank, epochs
// and learning rate for all, 3 seeds. Writes docs/results/loku.md.
//
//   npx tsx bench/loku_unlearn.ts [--world runs/world] [--seeds 0,1,2] [--epochs 5] [--lr 1e-3] [--rank 8] [--batch 4] [--out runs/loku]
//   npx tsx bench/loku_unlearn.ts --smoke   (1 seed, 1 epoch, in a temporary folder, no doc; without --world it
//   first builds a tiny world there with bench/build_world.ts: seconds; the test suite runs it)

import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/models/load.ts';
import type { HfTokenizer } from '../src/io/hf.ts';
import { encodeCausalLm } from '../src/train/tasks/causal_lm.ts';
import { knowledgeMetrics, type KnowledgeMetrics } from '../src/workflows/loku/evaluate.ts';
import { runUnlearn, type UnlearnInit } from '../src/workflows/loku/unlearn.ts';
import type { UnlearnLoss } from '../src/workflows/loku/task.ts';
import { Rng } from '../src/util/rng.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { facts, writeJsonl, type Person } from './tiny_world.ts';
import { buildSmokeWorld } from './build_world.ts';

const { values: v } = parseArgs({
  options: {
    world: { type: 'string' }, smoke: { type: 'boolean', default: false }, seeds: { type: 'string', default: '0,1,2' }, epochs: { type: 'string', default: '5' },
    lr: { type: 'string', default: '1e-3' }, rank: { type: 'string', default: '8' }, batch: { type: 'string', default: '4' }, out: { type: 'string', default: 'runs/loku' },
    'forget-frac': { type: 'string', default: '0.1' }, threads: { type: 'string' }, doc: { type: 'string', default: 'docs/results/loku.md' },
  },
});
const threads = v.threads ? Number(v.threads) : undefined;
if (v.smoke) {
  // Smoke runs leave nothing behind: no doc, the runs in a folder removed on exit.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-loku-smoke-'));
  process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  Object.assign(v, { seeds: '0', epochs: '1', out: tmp, doc: '' });
}
// No default in parseArgs: a smoke run without --world builds its own.
v.world ??= v.smoke ? await buildSmokeWorld(threads) : 'runs/world';
const seeds = v.seeds!.split(',').map(Number);
const people: Person[] = JSON.parse(fs.readFileSync(path.join(v.world!, 'people.json'), 'utf8'));
const modelDir = path.join(v.world!, 'taught', 'model');

// The forget split: every fact of a seeded 10% of the people (TOFU's forget10).
const order = new Rng('loku-forget-split').permutation(people.length);
const nForget = Math.round(Number(v['forget-frac']) * people.length);
const forgetPeople = order.slice(0, nForget).map((i) => people[i]);
const retainPeople = order.slice(nForget).map((i) => people[i]);
fs.mkdirSync(v.out!, { recursive: true });
const forgetFile = path.join(v.out!, 'forget.jsonl'), retainFile = path.join(v.out!, 'retain.jsonl');
writeJsonl(forgetFile, facts(forgetPeople));
writeJsonl(retainFile, facts(retainPeople));

const loaded = await loadModel(modelDir, 'decoder');
const tok = loaded.tokenizer as HfTokenizer;
const enc = (f: ReturnType<typeof facts>) => encodeCausalLm(f, tok, 64);
const before = {
  forget: await knowledgeMetrics(loaded.model, null, enc(facts(forgetPeople)), { padId: tok.padTokenId ?? 0, threads }),
  retain: await knowledgeMetrics(loaded.model, null, enc(facts(retainPeople)), { padId: tok.padTokenId ?? 0, threads }),
};
console.log(`taught model: forget exact ${(100 * before.forget.exact_match).toFixed(1)}%, retain exact ${(100 * before.retain.exact_match).toFixed(1)}%`);

const METHODS: { name: string; loss: UnlearnLoss; init: UnlearnInit }[] = [
  { name: 'gradient ascent (GA)', loss: 'ga', init: 'lora' },
  { name: 'gradient difference (GD)', loss: 'gd', init: 'lora' },
  { name: 'IHL, plain LoRA init', loss: 'ihl', init: 'lora' },
  { name: 'IHL + FILA (LoKU)', loss: 'ihl', init: 'fila' },
];
const runs: { method: string; seed: number; forget: KnowledgeMetrics; retain: KnowledgeMetrics; seconds: number }[] = [];
for (const m of METHODS) {
  for (const seed of seeds) {
    const out = path.join(v.out!, `${m.loss}-${m.init}-s${seed}`);
    const r = await runUnlearn({
      model: modelDir, forget: forgetFile, retain: retainFile, out, init: m.init, loss: m.loss, rank: Number(v.rank), epochs: Number(v.epochs),
      lr: Number(v.lr), batchSize: Number(v.batch), seed, threads, maxLen: 64,
    });
    runs.push({ method: m.name, seed, forget: r.after!.forget, retain: r.after!.retain, seconds: r.seconds });
    console.log(`${m.name} seed ${seed}: forget exact ${(100 * r.after!.forget.exact_match).toFixed(1)}% NLL ${r.after!.forget.nll.toFixed(3)}; retain exact ${(100 * r.after!.retain.exact_match).toFixed(1)}% NLL ${r.after!.retain.nll.toFixed(3)} (${r.seconds.toFixed(0)} s)`);
  }
}

const ms = (xs: number[], scale = 1, d = 1) => {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${(scale * mean).toFixed(d)} ± ${(scale * sd).toFixed(d)}`;
};
const lines = [
  '| method | forget exact % ↓ | forget token acc. % ↓ | forget answer prob. ↓ | forget NLL ↑ | retain exact % ↑ | retain token acc. % ↑ | retain answer prob. ↑ | retain NLL ↓ |',
  '|---|---|---|---|---|---|---|---|---|',
  `| taught model (before) | ${(100 * before.forget.exact_match).toFixed(1)} | ${(100 * before.forget.token_accuracy).toFixed(1)} | ${before.forget.probability.toFixed(3)} | ${before.forget.nll.toFixed(3)} | ${(100 * before.retain.exact_match).toFixed(1)} | ${(100 * before.retain.token_accuracy).toFixed(1)} | ${before.retain.probability.toFixed(3)} | ${before.retain.nll.toFixed(3)} |`,
  ...METHODS.map((m) => {
    const rs = runs.filter((r) => r.method === m.name);
    const f = (k: keyof KnowledgeMetrics, side: 'forget' | 'retain', scale = 1, d = 1) => ms(rs.map((r) => r[side][k] as number), scale, d);
    return `| ${m.name} | ${f('exact_match', 'forget', 100)} | ${f('token_accuracy', 'forget', 100)} | ${f('probability', 'forget', 1, 3)} | ${f('nll', 'forget', 1, 3)} | ${f('exact_match', 'retain', 100)} | ${f('token_accuracy', 'retain', 100)} | ${f('probability', 'retain', 1, 3)} | ${f('nll', 'retain', 1, 3)} |`;
  }),
];
const table = lines.join('\n');
console.log('\n' + table);
const meta = { date: new Date().toISOString(), host: `${os.cpus().length} cores`, args: v, people: people.length, forget: forgetPeople.length, retain: retainPeople.length, runs };
fs.writeFileSync(path.join(v.out!, 'table.json'), JSON.stringify(meta, null, 1) + '\n');
if (v.doc) {
  const doc = fs.existsSync(v.doc) ? fs.readFileSync(v.doc, 'utf8') : '';
  const start = '<!-- loku-table:start -->', end = '<!-- loku-table:end -->';
  const block = `${start}\n${table}\n\n(${seeds.length} seeds, mean ± std; ${people.length} people, forget ${forgetPeople.length} people = ${4 * forgetPeople.length} facts, retain ${retainPeople.length} people = ${4 * retainPeople.length} facts; LoRA r ${v.rank}, α ${2 * Number(v.rank)}, ${v.epochs} epochs, lr ${v.lr}, batch ${v.batch}; measured ${meta.date.slice(0, 10)})\n${end}`;
  if (doc.includes(start)) writeFileAtomic(v.doc, doc.replace(new RegExp(`${start}[\\s\\S]*${end}`), block));
  else console.log(`(${v.doc} has no ${start} block: table not written there)`);
}
