// LoRAM's task side, on the synthetic world (bench/build_world.ts): the taught
// model knows every person's four facts in question form (T1). The
// downstream task is a new form, statements (T2: "the birthplace of X is
// …"): a LoRA learns it from half of the people and is scored on the other
// half, whose facts only the pretrained weights hold. So a LoRA trained on a
// pruned model (which lost part of that knowledge) and recovered onto the
// full model tests LoRAM's claim: train small, infer large.
//
// Rows (LoRA r 8, α 16 on every linear layer but the head; same epochs and lr
// everywhere; 3 seeds): the full model with no LoRA; full + LoRA trained on
// full; pruned + its LoRA; full + the recovered LoRA (LoRAM); the same after
// LoRAM's alignment step (full fine-tuning of the pruned model on the T1
// corpus); for structured (LLM-Pruner Taylor, calibrated on 10 T1 facts) and
// random-structured pruning. Scores: held-out people's T2 statements
// (teacher-forced exact answer, %, and NLL/token) and the training people's.
//
//   npx tsx bench/loram_measure.ts [--world runs/world] [--ratio 0.5] [--seeds 0,1,2] [--epochs 20] [--lr 2e-3] [--align-epochs 10] [--out runs/loram]
//   npx tsx bench/loram_measure.ts --smoke   (1 seed, 1 epoch, 1 alignment epoch, in a temporary folder, no doc;
//   without --world it first builds a tiny world there with bench/build_world.ts: seconds; the test suite runs it)

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { HfTokenizer } from '../src/io/hf.ts';
import { loadModel } from '../src/models/load.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { loadPeftAdapter } from '../src/peft/adapter_files.ts';
import { runTrainJob } from '../src/tasks/train.ts';
import { encodeCausalLm, type CausalLmExample } from '../src/train/tasks/causal_lm.ts';
import { Rng } from '../src/util/rng.ts';
import { writeFileAtomic } from '../src/io/atomic.ts';
import { knowledgeMetrics } from '../src/workflows/loku/evaluate.ts';
import { runLoramPrune } from '../src/workflows/loram/prune.ts';
import { runLoramRecover } from '../src/workflows/loram/recover.ts';
import { facts, writeJsonl, type Person } from './tiny_world.ts';
import { buildSmokeWorld } from './build_world.ts';

const { values: v } = parseArgs({
  options: {
    world: { type: 'string' }, smoke: { type: 'boolean', default: false }, ratio: { type: 'string', default: '0.5' }, seeds: { type: 'string', default: '0,1,2' },
    epochs: { type: 'string', default: '20' }, lr: { type: 'string', default: '2e-3' }, 'align-epochs': { type: 'string', default: '10' },
    out: { type: 'string', default: 'runs/loram' }, threads: { type: 'string' }, doc: { type: 'string', default: 'docs/results/loram.md' },
  },
});
const threads = v.threads ? Number(v.threads) : undefined;
if (v.smoke) {
  // Smoke runs leave nothing behind: no doc, the runs in a folder removed on exit.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-loram-smoke-'));
  process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
  Object.assign(v, { seeds: '0', epochs: '1', 'align-epochs': '1', out: tmp, doc: '' });
}
// No default in parseArgs: a smoke run without --world builds its own.
v.world ??= v.smoke ? await buildSmokeWorld(threads) : 'runs/world';
const seeds = v.seeds!.split(',').map(Number);
const out = v.out!;
fs.mkdirSync(out, { recursive: true });
const people: Person[] = JSON.parse(fs.readFileSync(path.join(v.world!, 'people.json'), 'utf8'));
const full = path.join(v.world!, 'taught', 'model');
const order = new Rng('loram-task-split').permutation(people.length);
const trainPeople = order.slice(0, people.length / 2).map((i) => people[i]), evalPeople = order.slice(people.length / 2).map((i) => people[i]);
const files = { t1: path.join(out, 't1_all.jsonl'), t2train: path.join(out, 't2_train.jsonl'), t2eval: path.join(out, 't2_eval.jsonl') };
writeJsonl(files.t1, facts(people, 'question'));
writeJsonl(files.t2train, facts(trainPeople, 'statement'));
writeJsonl(files.t2eval, facts(evalPeople, 'statement'));

const fullLoaded = await loadModel(full, 'decoder');
const tok = fullLoaded.tokenizer as HfTokenizer;
const padId = tok.padTokenId ?? 0;
const enc = (rows: ReturnType<typeof facts>): CausalLmExample[] => encodeCausalLm(rows, tok, 64);
const sets = { heldOut: enc(facts(evalPeople, 'statement')), train: enc(facts(trainPeople, 'statement')), t1: enc(facts(people, 'question')) };
type Scores = { heldOut: number; heldOutNll: number; train: number; t1: number };
async function score(model: DecoderModel, adapterDir?: string): Promise<Scores> {
  const set = adapterDir ? loadPeftAdapter(model, adapterDir, { headNames: model.headNames, warn: () => {} }).set : null;
  const h = await knowledgeMetrics(model, set, sets.heldOut, { padId, threads });
  const t = await knowledgeMetrics(model, set, sets.train, { padId, threads });
  const k = await knowledgeMetrics(model, null, sets.t1, { padId, threads });
  return { heldOut: h.exact_match, heldOutNll: h.nll, train: t.exact_match, t1: k.exact_match };
}

// Pruned models: structured (Taylor on 10 T1 facts) and random-structured; each also aligned (full fine-tuning on T1).
const ratio = Number(v.ratio);
const variants: { name: string; dir: string; params?: number }[] = [];
for (const importance of ['taylor', 'random'] as const) {
  const dir = path.join(out, `pruned-${importance}`);
  const r = await runLoramPrune({ model: full, out: dir, importance, data: importance === 'taylor' ? files.t1 : undefined, ffnRatio: ratio, attnRatio: ratio, seed: 0, threads });
  variants.push({ name: importance === 'taylor' ? 'LoRAM-Stru' : 'LoRAM-Rand', dir, params: r.parameters.pruned });
  const aligned = path.join(out, `aligned-${importance}`);
  if (!fs.existsSync(path.join(aligned, 'model', 'config.json'))) {
    await runTrainJob({ task: 'causal-lm', model: dir, data: files.t1, method: 'lora', methodConfig: {}, full: true, epochs: Number(v['align-epochs']), lr: 1e-3, batchSize: 16, seed: 0, out: aligned, weightDecay: 0, schedule: 'cosine', threads, checkpointEvery: 10000 });
  }
  // The aligned folder is the pruned model with new weights: its loram.json is the pruned one's.
  fs.copyFileSync(path.join(dir, 'loram.json'), path.join(aligned, 'model', 'loram.json'));
  variants.push({ name: `${importance === 'taylor' ? 'LoRAM-Stru' : 'LoRAM-Rand'} + alignment`, dir: path.join(aligned, 'model'), params: r.parameters.pruned });
}

const lora = async (model: string, seed: number, name: string) => {
  const dir = path.join(out, `lora-${name}-s${seed}`);
  const r = await runTrainJob({ task: 'causal-lm', model, data: files.t2train, method: 'lora', methodConfig: { r: 8, lora_alpha: 16 }, epochs: Number(v.epochs), lr: Number(v.lr), batchSize: 16, seed, out: dir, threads, checkpointEvery: 10000 });
  return { dir: r.adapterDir, seconds: r.seconds };
};

type Row = { name: string; scores: Scores[]; seconds: number[]; params?: number };
const rows: Row[] = [];
rows.push({ name: 'full model, no LoRA', scores: [await score(fullLoaded.model)], seconds: [], params: undefined });
const fullRow: Row = { name: 'full + LoRA trained on full', scores: [], seconds: [] };
for (const s of seeds) {
  const l = await lora(full, s, 'full');
  fullRow.scores.push(await score(fullLoaded.model, l.dir));
  fullRow.seconds.push(l.seconds);
}
rows.push(fullRow);
for (const vt of variants) {
  const small = await loadModel(vt.dir, 'decoder');
  const own: Row = { name: `${vt.name}: pruned + its LoRA`, scores: [], seconds: [], params: vt.params };
  const rec: Row = { name: `${vt.name}: full + recovered LoRA`, scores: [], seconds: [] };
  for (const s of seeds) {
    const l = await lora(vt.dir, s, vt.name.replace(/[^A-Za-z]+/g, '-'));
    own.scores.push(await score(small.model, l.dir));
    own.seconds.push(l.seconds);
    const recDir = `${l.dir}-recovered`;
    runLoramRecover({ adapter: l.dir, pruned: vt.dir, out: recDir });
    rec.scores.push(await score(fullLoaded.model, recDir));
    rec.seconds.push(l.seconds);
  }
  rows.push(own, rec);
}

const ms = (xs: number[], scale = 100, d = 1) => {
  if (!xs.length) return '–';
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return xs.length > 1 ? `${(scale * mean).toFixed(d)} ± ${(scale * sd).toFixed(d)}` : (scale * mean).toFixed(d);
};
let fullParams = 0;
for (const w of fullLoaded.model.weights.values()) fullParams += w.data.length;
const table = [
  '| system | params of the trained-on model | held-out T2 exact % | held-out T2 NLL/token | train-people T2 exact % | T1 facts known (exact %) | LoRA training s |',
  '|---|---|---|---|---|---|---|',
  ...rows.map((r) => `| ${r.name} | ${((r.params ?? fullParams) / 1e6).toFixed(2)}M | ${ms(r.scores.map((s) => s.heldOut))} | ${ms(r.scores.map((s) => s.heldOutNll), 1, 3)} | ${ms(r.scores.map((s) => s.train))} | ${ms(r.scores.map((s) => s.t1))} | ${ms(r.seconds, 1, 0)} |`),
].join('\n');
console.log('\n' + table);
fs.writeFileSync(path.join(out, 'table.json'), JSON.stringify({ date: new Date().toISOString(), args: v, rows }, null, 1) + '\n');
if (v.doc && fs.existsSync(v.doc)) {
  const doc = fs.readFileSync(v.doc, 'utf8');
  const start = '<!-- loram-task:start -->', end = '<!-- loram-task:end -->';
  const block = `${start}\n${table}\n\n(${seeds.length} seeds, mean ± std; ${people.length} people, LoRA on ${trainPeople.length} people's T2 statements, scored on the other ${evalPeople.length}; pruning ratio ${ratio} of FFN neurons and KV-head groups in all layers; LoRA r 8, α 16, ${v.epochs} epochs, lr ${v.lr}; alignment ${v['align-epochs']} epochs of full fine-tuning on T1; measured ${new Date().toISOString().slice(0, 10)})\n${end}`;
  if (doc.includes(start)) writeFileAtomic(v.doc, doc.replace(new RegExp(`${start}[\\s\\S]*${end}`), block));
}
