// `lorakit continual --tasks imdb,spam,amazon,yelp`: a sequence of
// classification tasks on one encoder, trained one after the other, and the
// accuracy matrix a[i][j] (task i's test accuracy after training task j, i ≤ j)
// for three systems:
//   <method> (default codyra)  after each task its adapter is merged into the
//                              weights (only the open ranks: CoDyRA's
//                              increment_task) and a fresh one starts the next task;
//   lora-sequential            one LoRA trained on every task in turn;
//   lora-per-task              a LoRA per task, each task read with its own
//                              (no forgetting by construction; the upper bound).
// Every task has its own 2-way head (task-incremental: a task is read with
// its head, which is frozen once its task is trained), so forgetting comes
// from the encoder. Average accuracy = mean_i a[i][T]; forgetting =
// mean_{i<T} (max_{i≤j<T} a[i][j] − a[i][T]) (Chaudhry et al. 2018).

import fs from 'node:fs';
import path from 'node:path';
import { AdapterSet } from '../adapters/inject.ts';
import { getMethod } from '../adapters/registry.ts';
import type { TargetModules } from '../adapters/targets.ts';
import { loadTextSet } from '../data/text_sets.ts';
import type { EncoderModel, WeightMap } from '../models/types.ts';
import { writeFileAtomic } from '../io/atomic.ts';
import { ClassificationTrainer, type EncodedExample } from '../train/trainer.ts';
import { loadEncoder } from './classification.ts';
import { USE_DEFAULT_TARGETS, type JobUi } from './train.ts';

export type ContinualSystem = 'method' | 'lora-sequential' | 'lora-per-task';

export interface ContinualOptions {
  tasks: string[];
  /** The method of the 'method' system (merged and restarted per task). */
  method: string;
  methodConfig: Record<string, unknown>;
  /** LoRA's config for the two LoRA systems. */
  loraConfig: Record<string, unknown>;
  systems: ContinualSystem[];
  model: string;
  targetModules?: TargetModules;
  epochs: number;
  lr: number;
  headLrScale: number;
  batchSize: number;
  seed: number;
  maxTrain: number;
  maxEval: number;
  maxLen: number;
  threads?: number;
  out: string;
}

export interface ContinualResult {
  system: string;
  /** a[i][j]: task i's test accuracy after training task j (null for j < i). */
  accuracy: (number | null)[][];
  average: number;
  forgetting: number;
  /** The 'method' system: each module's rank when each task's adapter was merged. */
  mergedRanks?: Record<string, number>[];
  seconds: number;
}

/** Average accuracy after the last task, and the mean forgetting of the earlier tasks. */
export function continualSummary(acc: (number | null)[][]): { average: number; forgetting: number } {
  const T = acc.length;
  const last = acc.map((row) => row[T - 1]!);
  const average = last.reduce((a, b) => a + b, 0) / T;
  if (T < 2) return { average, forgetting: 0 };
  let f = 0;
  for (let i = 0; i < T - 1; i++) {
    let best = -Infinity;
    for (let j = i; j < T - 1; j++) best = Math.max(best, acc[i][j]!);
    f += best - acc[i][T - 1]!;
  }
  return { average, forgetting: f / (T - 1) };
}

export async function runContinualJob(o: ContinualOptions, ui: JobUi): Promise<{ results: ContinualResult[]; markdown: string }> {
  if (o.tasks.length < 2) throw new Error(`--tasks needs at least two tasks, got ${o.tasks.join(',')}`);
  const { model, tokenizer } = await loadEncoder(o.model);
  const targetModules = o.targetModules ?? (o.model === 'use' ? USE_DEFAULT_TARGETS : 'all-linear');
  const enc = (xs: { text: string; label: number }[]): EncodedExample[] => xs.map((x) => ({ ids: tokenizer.encode(x.text).slice(0, o.maxLen), label: x.label }));
  const sets = o.tasks.map((t) => loadTextSet(t, { maxTrain: o.maxTrain, maxTest: o.maxEval }));
  const data = sets.map((s) => ({ train: enc(s.train), test: enc(s.test) }));
  ui.info(`tasks: ${sets.map((s) => `${s.name} (${s.train.length} train / ${s.test.length} test, ${s.labelNames.join('/')})`).join(' → ')}`);
  const results: ContinualResult[] = [];
  for (const system of o.systems) {
    const t0 = performance.now();
    const name = system === 'method' ? o.method : system;
    const method = getMethod(system === 'method' ? o.method : 'lora');
    const config = method.schema.parse(system === 'method' ? o.methodConfig : o.loraConfig);
    let weights: WeightMap = model.weights;
    let shared: AdapterSet | null = null;
    const perTask: AdapterSet[] = [];
    const heads: Map<string, Float32Array>[] = [];
    const acc: (number | null)[][] = o.tasks.map(() => o.tasks.map(() => null));
    const mergedRanks: Record<string, number>[] = [];
    for (let j = 0; j < o.tasks.length; j++) {
      const m: EncoderModel = system === 'method' ? model.withWeights(weights) : model;
      const set = system === 'lora-sequential' ? (shared ??= new AdapterSet(method, config, model.sites, model.weights, { targetModules, seed: o.seed })) : new AdapterSet(method, config, m.sites, m.weights, { targetModules, seed: o.seed + j });
      if (system === 'lora-per-task') perTask.push(set);
      // CoDyRA's official run: cosine learning rate without warmup.
      const schedule = method.name === 'codyra' ? { schedule: 'cosine' as const, warmupRatio: 0 } : {};
      ui.startPhase(`${name}: task ${j + 1} ${o.tasks[j]}`, Math.ceil(data[j].train.length / o.batchSize) * o.epochs);
      const tr = new ClassificationTrainer(m, set, 2, { epochs: o.epochs, lr: o.lr, headLrScale: o.headLrScale, batchSize: o.batchSize, seed: o.seed + j, threads: o.threads, maxGradNorm: 1, ...schedule, onStep: (s) => ui.step(s) });
      await tr.fit(data[j].train, []);
      ui.endPhase();
      heads.push(new Map([...tr.head].map(([k, v]) => [k, Float32Array.from(v)])));
      await tr.release();
      let evalModel: EncoderModel = m, evalSet: (i: number) => AdapterSet | null = () => set;
      if (system === 'method') {
        // increment_task: the adapter into the weights (closed ranks contribute nothing), a fresh one for the next task.
        mergedRanks.push(Object.fromEntries(set.targets.map((s) => [s.name, set.method.factors ? set.factorsFor(s).r : NaN])));
        weights = set.mergeInto(weights);
        evalModel = model.withWeights(weights);
        evalSet = () => null;
      } else if (system === 'lora-per-task') evalSet = (i) => perTask[i];
      for (let i = 0; i <= j; i++) {
        const ev = new ClassificationTrainer(evalModel, evalSet(i), 2, { epochs: 1, lr: 1, batchSize: 32, seed: 0, threads: o.threads });
        for (const [k, v] of heads[i]) ev.head.get(k)!.set(v);
        acc[i][j] = (await ev.evaluate(data[i].test)).accuracy;
        await ev.release();
      }
      ui.info(`${name} after ${o.tasks[j]}: ${acc.slice(0, j + 1).map((row, i) => `${o.tasks[i]} ${(100 * row[j]!).toFixed(1)}%`).join(', ')}`);
    }
    results.push({ system: name, accuracy: acc, ...continualSummary(acc), ...(mergedRanks.length && { mergedRanks }), seconds: (performance.now() - t0) / 1000 });
  }
  const markdown = continualMarkdown(o, results);
  fs.mkdirSync(o.out, { recursive: true });
  writeFileAtomic(path.join(o.out, 'continual.json'), JSON.stringify({ options: o, results }, null, 2) + '\n');
  writeFileAtomic(path.join(o.out, 'continual.md'), markdown + '\n');
  return { results, markdown };
}

const pct = (x: number | null) => (x === null ? '—' : (100 * x).toFixed(1));

export function continualMarkdown(o: ContinualOptions, results: ContinualResult[]): string {
  const out = [
    `Tasks in order: ${o.tasks.join(' → ')}; ${o.maxTrain} training / ${o.maxEval} test examples per task (fixed seeded splits), ${o.epochs} epoch(s) per task, batch ${o.batchSize}, lr ${o.lr}, seed ${o.seed}; ${o.method} ${JSON.stringify(o.methodConfig)}, LoRA ${JSON.stringify(o.loraConfig)}.`,
    '',
    '| system | average accuracy % (after the last task) | forgetting (points) |',
    '|---|---:|---:|',
    ...results.map((r) => `| ${r.system} | ${pct(r.average)} | ${(100 * r.forgetting).toFixed(1)} |`),
  ];
  for (const r of results) {
    out.push('', `**${r.system}**: test accuracy % of task i (rows) after training task j (columns)`, '', `| task | ${o.tasks.map((t, j) => `after ${j + 1} (${t})`).join(' | ')} |`, `|---|${o.tasks.map(() => '---:|').join('')}`);
    r.accuracy.forEach((row, i) => out.push(`| ${o.tasks[i]} | ${row.map(pct).join(' | ')} |`));
    if (r.mergedRanks) out.push('', `Ranks merged per task: ${r.mergedRanks.map((m, j) => `${o.tasks[j]}: ${Object.values(m).join('/')}`).join('; ')} (modules in order).`);
  }
  return out.join('\n');
}
