// Builds the synthetic world of bench/tiny_world.ts in a folder and teaches a
// small Llama its facts with `lorakit train --full` (the job, in process):
//
//   <dir>/people.json, <dir>/facts.jsonl          N people × 4 question facts
//   <dir>/random/                                  the seeded random-weight model
//   <dir>/taught/model/                            after full fine-tuning on every fact
//   <dir>/taught/results.json                      the job's own record
//
// Usage: npx tsx bench/build_world.ts [--dir runs/world] [--people 40] [--epochs 80] [--lr 1e-3] [--batch 16] [--seed 0] [--smoke]
// --smoke: 10 people, 1 epoch, into a temporary folder removed on exit (seconds; the test suite runs it).
// (~800 steps, minutes on two cores). Tried on the way (seed 0): 40 people at
// lr 1e-3, or 3e-3 with a 150-step warmup, bring the answer loss near 0 within
// ~400 steps; at lr 3e-3 with a 30-step warmup, 40 people were still at 1.4
// after 300 steps and 80 people at 1.4 after 600; 120 people at 6e-3, batch
// 32, knew 14% of the facts after 2400 steps (the loss stays near the
// attributes' marginal entropy): from random weights, a high learning rate
// early keeps the model from binding names to attributes.
// Prints how well the taught model knows the facts (teacher-forced exact answers).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/models/load.ts';
import type { HfTokenizer } from '../src/io/hf.ts';
import { runTrainJob } from '../src/tasks/train.ts';
import { encodeCausalLm } from '../src/train/tasks/causal_lm.ts';
import { knowledgeMetrics } from '../src/workflows/loku/evaluate.ts';
import { facts, makePeople, writeJsonl, writeRandomLlama } from './tiny_world.ts';

export async function buildWorld(o: { dir: string; people: number; epochs: number; lr: number; batch: number; seed: number; threads?: number }) {
  const people = makePeople(o.people, o.seed);
  fs.mkdirSync(o.dir, { recursive: true });
  fs.writeFileSync(path.join(o.dir, 'people.json'), JSON.stringify(people, null, 1) + '\n');
  writeJsonl(path.join(o.dir, 'facts.jsonl'), facts(people));
  writeRandomLlama(path.join(o.dir, 'random'), people, undefined, o.seed);
  const t0 = performance.now();
  const r = await runTrainJob({
    task: 'causal-lm', model: path.join(o.dir, 'random'), data: path.join(o.dir, 'facts.jsonl'), method: 'lora', methodConfig: {}, full: true,
    epochs: o.epochs, lr: o.lr, batchSize: o.batch, seed: o.seed, out: path.join(o.dir, 'taught'), weightDecay: 0, warmupRatio: 0.05, schedule: 'cosine',
    maxGradNorm: 1, threads: o.threads, checkpointEvery: 1000,
  }, {
    info: (m) => console.log(m), startPhase() {}, step: (s) => { if (s.step % 200 === 0) console.log(`step ${s.step}/${s.totalSteps} loss ${s.loss.toFixed(4)}`); }, eval() {}, endPhase() {},
  });
  const loaded = await loadModel(r.adapterDir, 'decoder');
  const tok = loaded.tokenizer as HfTokenizer;
  const all = encodeCausalLm(facts(people).map((f) => ({ prompt: f.prompt, completion: f.completion })), tok, 64);
  const m = await knowledgeMetrics(loaded.model, null, all, { padId: tok.padTokenId ?? 0, threads: o.threads });
  console.log(`taught in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${all.length} facts, NLL/token ${m.nll.toFixed(4)}, token accuracy ${(100 * m.token_accuracy).toFixed(1)}%, exact ${(100 * m.exact_match).toFixed(1)}%`);
  return { people, model: r.adapterDir, knowledge: m };
}

/**
 * A tiny world for smoke runs (this script's and the benches that read a
 * world): 10 people, so a 10% forget split and a half/half task split are
 * both non-empty; 1 epoch. In a temporary folder removed when the process exits.
 */
export async function buildSmokeWorld(threads?: number): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-world-smoke-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  await buildWorld({ dir, people: 10, epochs: 1, lr: 1e-3, batch: 16, seed: 0, threads });
  return dir;
}

if (import.meta.url.endsWith(process.argv[1]?.split('/').pop() ?? '')) {
  const { values } = parseArgs({ options: { batch: { type: 'string', default: '16' }, dir: { type: 'string', default: 'runs/world' }, people: { type: 'string', default: '40' }, epochs: { type: 'string', default: '80' }, lr: { type: 'string', default: '1e-3' }, seed: { type: 'string', default: '0' }, threads: { type: 'string' }, smoke: { type: 'boolean', default: false } } });
  if (values.smoke) await buildSmokeWorld(values.threads ? Number(values.threads) : undefined);
  else await buildWorld({ dir: values.dir!, people: Number(values.people), epochs: Number(values.epochs), lr: Number(values.lr), batch: Number(values.batch), seed: Number(values.seed), threads: values.threads ? Number(values.threads) : undefined });
}
