// `lorakit compare`: the bundled sentiment task (src/tasks/classification.ts's
// job) for several adapter methods × seeds, plus one frozen-encoder baseline
// per seed; a table of mean ± std test accuracy, trainable parameters, median
// training-step time and peak memory, written as Markdown and an SVG bar chart
// (drawn here, no plotting dependency).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { getMethod } from '../adapters/registry.ts';
import type { TargetModules } from '../adapters/targets.ts';
import { ClassifyJobOptions, JobUi, runClassificationJob, runEvalJob } from './classification.ts';
import { readAdapter } from '../peft/adapter_files.ts';
import { OPTIMIZER_KINDS, type OptimizerSpec } from '../train/optimizers.ts';

export const BASELINE = 'frozen encoder';

/**
 * Per-method learning rates where the method's parameters live on another
 * scale than LoRA's (the head keeps the common head learning rate).
 * FourierFT: each coefficient moves ΔW by scaling/(out·in) ≈ 4e-4 on USE's
 * layers, so its paper trains the spectrum with lr ≈ 5e-2…1e-1. LoCA's
 * orthonormal DCT bases move each entry by ≈ 2/√(out·in) ≈ 3e-3 per unit
 * coefficient, about ten times FourierFT's, so a tenth of its rate: at 5e-2
 * LoCA's loss jumped from 0.38 to 1.08 on its fifth step (seed 42).
 */
export const METHOD_LR: Record<string, number> = {
  fourierft: 5e-2,
  loca: 5e-3,
  // RandLoRA's γ starts at 1/max(N, min(in, out)) ≈ 1e-3: Adam steps of 2e-3 multiply
  // ΔW several-fold per step; at LoRA's rate its training loss spikes within
  // the first ten steps (seed 42: 0.41 → 1.04), at 5e-4 it does not.
  randlora: 5e-4,
};

/**
 * Per-method config defaults for a comparison whose runs start from the
 * frozen-encoder probe (LP-FT): a method whose default init already moves the
 * model gets a start that does not (override with CompareOptions.methodConfigs).
 * - FourierFT: PEFT's default spectrum init is N(0, 1) (init_weights false);
 *   init_weights true is PEFT's zero spectrum, ΔW = 0 at step 0.
 * - LoRA-SB: ΔW1 = −η·sign(∇W) is a whole sign-Adam step on every weight; with
 *   η = 1e-3 the step-0 loss was 1.89 against the probe's 0.41 (seed 42).
 *   η = 1e-4 approximates the first step of a full fine-tune at 1e-4.
 */
/**
 * A compared system: an adapter method, optionally with another optimizer
 * (`lora@lorapro`, `lora@allora`), or full fine-tuning (`full`, `full@galore`, `full@sgd`).
 */
export function parseSystem(name: string): { method: string; full: boolean; optimizer: OptimizerSpec['kind'] } {
  const [base, opt = 'adamw'] = name.split('@');
  if (!(OPTIMIZER_KINDS as readonly string[]).includes(opt)) throw new Error(`'${name}': unknown optimizer '${opt}' (optimizers: ${OPTIMIZER_KINDS.join(', ')})`);
  const optimizer = opt as OptimizerSpec['kind'];
  if (base === 'full') {
    if (optimizer === 'lorapro' || optimizer === 'allora') throw new Error(`'${name}': ${optimizer} steps a LoRA; full fine-tuning takes adamw, sgd or galore`);
    return { method: 'lora', full: true, optimizer };
  }
  getMethod(base);
  if (optimizer === 'galore') throw new Error(`'${name}': GaLore projects full weight matrices: compare it as 'full@galore'`);
  return { method: base, full: false, optimizer };
}

/** The optimizer settings of a compared system (GaLore at the official pre-training rank, refresh gap and scale). */
function optimizerOf(kind: OptimizerSpec['kind']): OptimizerSpec {
  return kind === 'galore' ? { kind, rank: 128, updateProjGap: 200, scale: 0.25 } : ({ kind } as OptimizerSpec);
}

export const METHOD_CONFIG: Record<string, Record<string, unknown>> = {
  fourierft: { init_weights: true },
  lorasb: { init_lr: 1e-4 },
};

export interface CompareOptions {
  methods: string[];
  seeds: number;
  /** Seeds used: firstSeed, firstSeed+1, ... */
  firstSeed: number;
  model: string;
  data: string;
  targetModules: TargetModules;
  epochs: number;
  /** Learning rate of the adapter parameters (METHOD_LR overrides per method unless `methodLr` does). */
  lr: number;
  /** Head learning rate = lr · headLrScale (the same for every method). */
  headLrScale: number;
  methodLr?: Record<string, number>;
  /** Extra config fields per method (LoRA gets r / lora_alpha from here too). */
  methodConfigs?: Record<string, Record<string, unknown>>;
  batchSize: number;
  maxTrain?: number;
  maxEval?: number;
  maxLen: number;
  threads?: number;
  out: string;
  /** The command line, recorded in the Markdown. */
  command?: string;
  /**
   * Reuse the (method, seed) runs already in <out>/compare.json when it was
   * made with the same settings (adding methods to a finished comparison).
   */
  reuse?: boolean;
  /** Head initialisation of every adapter run (see ClassifyJobOptions.headInit); 'probe' by default. */
  headInit?: 'random' | 'probe';
  /**
   * Also score the test split at every rank b = 1..r of the DyLoRA and LoRA runs
   * (DyLoRA read at b without retraining; LoRA truncated to its first b components).
   */
  evalRanks?: boolean;
}

/** Test accuracy at each rank b of one method's runs (CompareOptions.evalRanks). */
export interface RankAccuracy {
  method: string;
  /** b = 1..r. */
  ranks: number[];
  /** Mean and sample std over seeds at each b. */
  mean: number[];
  std: number[];
}

/**
 * Settings that must match for runs to be reused. A method's own learning rate
 * and config are checked per run (CompareRun.lr / .config), so retuning one
 * method reruns only that method.
 */
const SETTINGS = ['model', 'data', 'targetModules', 'epochs', 'headLrScale', 'batchSize', 'maxTrain', 'maxEval', 'maxLen', 'headInit'] as const;
const headLr = (o: Pick<CompareOptions, 'lr' | 'headLrScale'>) => o.lr * o.headLrScale;

function previousRuns(o: CompareOptions): Map<string, CompareRun> {
  const file = path.join(o.out, 'compare.json');
  if (!o.reuse || !fs.existsSync(file)) return new Map();
  const prev = JSON.parse(fs.readFileSync(file, 'utf8'));
  for (const k of SETTINGS) {
    if (JSON.stringify(prev.options?.[k] ?? null) !== JSON.stringify(o[k] ?? null)) {
      throw new Error(`--reuse: ${file} was made with ${k} = ${JSON.stringify(prev.options?.[k])}, this run has ${JSON.stringify(o[k])}`);
    }
  }
  if (headLr(prev.options) !== headLr(o)) throw new Error(`--reuse: ${file} was made with head learning rate ${headLr(prev.options)}, this run has ${headLr(o)}`);
  return new Map((prev.runs as CompareRun[]).filter((r) => !r.error).map((r) => [`${r.method}@${r.seed}`, r]));
}

export interface CompareRun {
  method: string;
  seed: number;
  testAccuracy: number;
  trainableParams: number;
  /** Median wall time of a training step (ms); null for the baseline (no steps). */
  medianStepMs: number | null;
  /** Highest resident set size sampled during the run (MiB, whole process). */
  peakRssMiB: number;
  /** Bytes of the optimizer's state at the end (moments, projectors); null for the baseline. */
  optimizerStateBytes?: number | null;
  seconds: number;
  /** The adapter learning rate and method config this run used (null for the baseline). */
  lr?: number | null;
  config?: Record<string, unknown> | null;
  /** Set when the run failed (the comparison goes on without it). */
  error?: string;
}

export interface CompareRow {
  method: string;
  seeds: number;
  meanAccuracy: number;
  stdAccuracy: number;
  accuracies: number[];
  trainableParams: number;
  medianStepMs: number | null;
  peakRssMiB: number;
  optimizerStateBytes?: number | null;
  /** Mean over seeds of (this method − frozen baseline of the same seed), accuracy as a fraction; absent for the baseline. */
  deltaVsBaseline?: number;
  /** The adapter learning rate and config overrides of this method's runs (absent for the baseline). */
  lr?: number;
  config?: Record<string, unknown>;
  /** Runs of this method that failed, and the first error. */
  failed?: number;
  error?: string;
}

export interface CompareResult {
  runs: CompareRun[];
  rows: CompareRow[];
  /** With evalRanks: accuracy at every rank of the dylora and lora runs. */
  rankAccuracy?: RankAccuracy[];
  markdown: string;
  svg: string;
  split: { train: number; validation: number; test: number };
}

export const median = (xs: number[]) => {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};
export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** Sample standard deviation (n − 1); 0 for one value. */
export const std = (xs: number[]) => (xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1)));

const rssMiB = () => process.memoryUsage.rss() / 2 ** 20;

/** Runs every (method, seed) and the baseline per seed; `ui` sees each job's progress. */
export async function runCompare(o: CompareOptions, ui: JobUi): Promise<CompareResult> {
  for (const m of o.methods) parseSystem(m); // unknown names fail before any training
  if (!(o.seeds >= 1)) throw new Error(`--seeds must be at least 1, got ${o.seeds}`);
  const runs: CompareRun[] = [];
  const prev = previousRuns(o);
  let split = { train: 0, validation: 0, test: 0 };
  if (prev.size) split = JSON.parse(fs.readFileSync(path.join(o.out, 'compare.json'), 'utf8')).split;
  for (let si = 0; si < o.seeds; si++) {
    const seed = o.firstSeed + si;
    for (const [mi, method] of o.methods.entries()) {
      const system = parseSystem(method);
      const lr = o.methodLr?.[method] ?? METHOD_LR[method] ?? o.lr;
      const methodConfig = system.full ? {} : {
        ...(system.method === 'lora' || system.method === 'dora' ? { r: 8, lora_alpha: 16 } : {}),
        // ALLoRA: no α/r scale and no dropout (its paper).
        ...(system.optimizer === 'allora' ? { lora_alpha: 8, lora_dropout: 0 } : {}),
        ...METHOD_CONFIG[system.method], ...o.methodConfigs?.[method],
      };
      const withBaseline = mi === 0;
      const old = prev.get(`${method}@${seed}`), oldBase = prev.get(`${BASELINE}@${seed}`);
      const same = old && old.lr === lr && JSON.stringify(old.config ?? null) === JSON.stringify(methodConfig);
      if (same && (!withBaseline || oldBase)) {
        ui.info(`== ${method}, seed ${seed}: reused from ${path.join(o.out, 'compare.json')}`);
        if (withBaseline) runs.push(oldBase!);
        runs.push(old);
        continue;
      }
      let peak = rssMiB();
      const stepTimes: number[] = [];
      let last = NaN;
      const sampler = setInterval(() => (peak = Math.max(peak, rssMiB())), 200);
      const job: ClassifyJobOptions = {
        model: o.model,
        data: o.data,
        method: system.method,
        methodConfig,
        full: system.full,
        optimizer: optimizerOf(system.optimizer),
        targetModules: o.targetModules,
        epochs: o.epochs,
        lr,
        headLrScale: headLr(o) / lr,
        headInit: o.headInit ?? 'probe',
        batchSize: o.batchSize,
        seed,
        out: path.join(o.out, `${method}-seed${seed}`),
        maxTrain: o.maxTrain,
        maxEval: o.maxEval,
        maxLen: o.maxLen,
        threads: o.threads,
        resume: false,
        baseline: withBaseline,
      };
      ui.info(`\n== ${method}, seed ${seed} (lr ${lr})${withBaseline ? ' + frozen-encoder baseline' : ''}`);
      let res;
      try {
        res = await runClassificationJob(job, {
          ...ui,
          step(s) {
            const now = performance.now();
            if (Number.isFinite(last)) stepTimes.push(now - last);
            last = now;
            peak = Math.max(peak, rssMiB());
            ui.step(s);
          },
          eval(e) {
            last = NaN; // evaluation between epochs is not a step
            ui.eval(e);
          },
        });
      } catch (e) {
        // One method failing (a bad config, a diverged run) must not lose the others' results.
        const error = (e as Error).message.split('\n')[0];
        ui.info(`!! ${method}, seed ${seed} failed: ${error}`);
        runs.push({ method, seed, testAccuracy: NaN, trainableParams: NaN, medianStepMs: null, peakRssMiB: peak, seconds: NaN, lr, config: methodConfig, error });
        continue;
      } finally {
        clearInterval(sampler);
      }
      split = res.split;
      peak = Math.max(peak, rssMiB());
      for (const r of res.rows) {
        const isBase = r.system.startsWith('frozen');
        runs.push({
          method: isBase ? BASELINE : method,
          seed,
          testAccuracy: r.testAccuracy,
          trainableParams: r.trainableParams,
          medianStepMs: isBase ? null : median(stepTimes),
          peakRssMiB: peak,
          optimizerStateBytes: isBase ? null : res.optimizerStateBytes ?? null,
          seconds: r.seconds,
          lr: isBase ? null : lr,
          config: isBase ? null : methodConfig,
        });
      }
    }
  }
  const order = [BASELINE, ...o.methods];
  const rows: CompareRow[] = order.map((m) => {
    const all = runs.filter((r) => r.method === m);
    const rs = all.filter((r) => !r.error);
    const acc = rs.map((r) => r.testAccuracy);
    const steps = rs.map((r) => r.medianStepMs).filter((x): x is number => x !== null);
    return {
      method: m,
      seeds: rs.length,
      meanAccuracy: mean(acc),
      stdAccuracy: std(acc),
      accuracies: acc,
      trainableParams: rs.length ? rs[0].trainableParams : NaN,
      medianStepMs: steps.length ? median(steps) : null,
      peakRssMiB: Math.max(...all.map((r) => r.peakRssMiB)),
      optimizerStateBytes: rs[0]?.optimizerStateBytes ?? null,
      failed: all.length - rs.length,
      error: all.find((r) => r.error)?.error,
      ...(m === BASELINE ? {} : { lr: all[0]?.lr ?? undefined, config: all[0]?.config ?? undefined, deltaVsBaseline: pairedDelta(rs, runs) }),
    };
  });
  const result: CompareResult = { runs, rows, split, markdown: '', svg: '' };
  if (o.evalRanks) result.rankAccuracy = await rankAccuracies(o, runs, ui);
  result.svg = compareSvg(rows);
  result.markdown = compareMarkdown(rows, { ...o, split }) + (result.rankAccuracy?.length ? '\n\n' + rankMarkdown(result.rankAccuracy) : '');
  fs.mkdirSync(o.out, { recursive: true });
  fs.writeFileSync(path.join(o.out, 'compare.json'), JSON.stringify({ options: o, runs, rows, split }, null, 2) + '\n');
  return result;
}

const pct = (x: number) => (100 * x).toFixed(2);

/** Test accuracy of each dylora / lora run at every rank b ≤ r (its saved adapter read at b). */
async function rankAccuracies(o: CompareOptions, runs: CompareRun[], ui: JobUi): Promise<RankAccuracy[]> {
  const out: RankAccuracy[] = [];
  for (const method of o.methods.filter((m) => m === 'dylora' || m === 'lora')) {
    const seeds = runs.filter((r) => r.method === method && !r.error).map((r) => r.seed);
    if (!seeds.length) continue;
    const per: number[][] = [];
    for (const seed of seeds) {
      const adapter = path.join(o.out, `${method}-seed${seed}`, 'adapter');
      const r = readAdapter(adapter).config.r as number;
      const accs: number[] = [];
      for (let b = 1; b <= r; b++) accs.push((await runEvalJob({ adapter, data: o.data, split: 'test', maxEval: o.maxEval, threads: o.threads, rank: b })).accuracy);
      ui.info(`${method} seed ${seed}, test accuracy at b = 1..${r}: ${accs.map(pct).join(', ')}`);
      per.push(accs);
    }
    const R = Math.min(...per.map((p) => p.length));
    const ranks = Array.from({ length: R }, (_, i) => i + 1);
    out.push({ method, ranks, mean: ranks.map((b) => mean(per.map((p) => p[b - 1]))), std: ranks.map((b) => std(per.map((p) => p[b - 1]))) });
  }
  return out;
}

/** Accuracy at every rank b, one column per method (DyLoRA at b; LoRA truncated to b). */
export function rankMarkdown(ra: RankAccuracy[]): string {
  const R = Math.max(...ra.map((a) => a.ranks.length));
  const head = ra.map((a) => (a.method === 'lora' ? 'lora truncated to b' : `${a.method} at b`));
  return [
    `| b | ${head.join(' | ')} |`,
    `|---:|${ra.map(() => '---|').join('')}`,
    ...Array.from({ length: R }, (_, i) => `| ${i + 1} | ${ra.map((a) => (i < a.mean.length ? `${pct(a.mean[i])} ± ${pct(a.std[i])}` : '—')).join(' | ')} |`),
    '',
    'Test accuracy % (mean ± std over seeds) of each run\'s saved adapter read at rank b without retraining: DyLoRA at its rank b, LoRA keeping its first b components (same scale α/r).',
  ].join('\n');
}

/** Mean of (run − baseline run of the same seed): the paired difference, free of the seed-to-seed spread the two share. */
function pairedDelta(rs: CompareRun[], all: CompareRun[]): number {
  const d = rs.flatMap((r) => {
    const b = all.find((x) => x.method === BASELINE && x.seed === r.seed && !x.error);
    return b ? [r.testAccuracy - b.testAccuracy] : [];
  });
  return d.length ? mean(d) : NaN;
}

const signed = (x: number) => (Number.isFinite(x) ? `${x >= 0 ? '+' : '−'}${Math.abs(100 * x).toFixed(2)}` : '—');
const settings = (r: CompareRow) => (r.lr === undefined ? '—' : [`lr ${r.lr}`, ...Object.entries(r.config ?? {}).map(([k, v]) => `${k} ${JSON.stringify(v)}`)].join(', '));

/** Rows for console.table. */
export function compareTable(rows: CompareRow[]) {
  return rows.map((r) => ({
    method: r.method,
    'test acc % (mean ± std)': `${pct(r.meanAccuracy)} ± ${pct(r.stdAccuracy)}`,
    'trainable params': r.trainableParams,
    'median step ms': r.medianStepMs === null ? '—' : +r.medianStepMs.toFixed(1),
    'peak RSS MiB': Math.round(r.peakRssMiB),
  }));
}

export function compareMarkdown(rows: CompareRow[], o: CompareOptions & { split: CompareResult['split']; svgName?: string; date?: string }): string {
  const lines = [
    '| method | test accuracy % (mean ± std) | per seed | vs frozen (points, paired) | trainable params | optimizer state (KiB) | median step (ms) | peak RSS (MiB) | settings |',
    '|---|---|---|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) => r.seeds === 0 ? `| ${r.method} | failed: ${(r.error ?? '').replace(/\|/g, '/')} | | | | | | | |` : `| ${r.method}${r.failed ? ` (${r.failed} run(s) failed)` : ''} | ${pct(r.meanAccuracy)} ± ${pct(r.stdAccuracy)} | ${r.accuracies.map(pct).join(', ')} | ${r.method === BASELINE ? '—' : signed(r.deltaVsBaseline ?? NaN)} | ${r.trainableParams.toLocaleString('en-US')} | ${r.optimizerStateBytes == null ? '—' : Math.round(r.optimizerStateBytes / 1024).toLocaleString('en-US')} | ${r.medianStepMs === null ? '—' : r.medianStepMs.toFixed(1)} | ${Math.round(r.peakRssMiB)} | ${settings(r)} |`),
  ];
  const seeds = Array.from({ length: o.seeds }, (_, i) => o.firstSeed + i).join(', ');
  return [
    `Task: ${o.data === 'imdb' ? 'bundled IMDB sentiment' : o.data} on ${o.model === 'use' ? 'the bundled Universal Sentence Encoder lite' : o.model}; ` +
      `${o.split.train} train / ${o.split.validation} validation / ${o.split.test} test examples (fixed split), ${o.epochs} epoch(s), batch ${o.batchSize}, ` +
      `target modules ${JSON.stringify(o.targetModules)}, seeds ${seeds}, ${os.cpus().length} CPU cores.`,
    '',
    ...lines,
    '',
    'Trainable parameters include the linear head (2 labels). "frozen encoder" is the linear probe on frozen embeddings (no training steps). ' +
      `${(o.headInit ?? 'probe') === 'probe' ? 'Every adapter run starts its head from that seed\'s probe (LP-FT), so "vs frozen" is the change the adapter made, averaged over seeds. ' : ''}` +
      'Settings: the adapter learning rate and config fields that differ from the method\'s defaults. ' +
      'Step time: median wall time between consecutive optimizer steps (forward + backward + update), first step of each epoch excluded. ' +
      'Peak RSS: highest resident set size of the whole process sampled during that run (runs share one process, so it never falls between runs).',
  ].join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A bar chart of mean test accuracy with ±std whiskers, one bar per method. */
export function compareSvg(allRows: CompareRow[], title = 'Test accuracy (mean ± std over seeds)'): string {
  const rows = allRows.filter((r) => r.seeds > 0);
  const W = 120 + 90 * rows.length, H = 360, left = 60, top = 40, bottom = 90, plotH = H - top - bottom;
  const hi = Math.min(100, Math.ceil((Math.max(...rows.map((r) => 100 * (r.meanAccuracy + r.stdAccuracy))) + 2) / 5) * 5);
  const lo = Math.max(0, Math.floor((Math.min(...rows.map((r) => 100 * (r.meanAccuracy - r.stdAccuracy))) - 5) / 5) * 5);
  const y = (v: number) => top + plotH * (1 - (v - lo) / (hi - lo || 1));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ];
  for (let v = lo; v <= hi; v += 5) {
    parts.push(`<line x1="${left}" x2="${W - 20}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v}%</text>`);
  }
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  rows.forEach((r, i) => {
    const cx = left + 45 + 90 * i, m = 100 * r.meanAccuracy, s = 100 * r.stdAccuracy;
    const color = r.method === BASELINE ? '#999' : '#4878a8';
    parts.push(`<rect x="${cx - 28}" y="${y(m).toFixed(1)}" width="56" height="${(top + plotH - y(m)).toFixed(1)}" fill="${color}"/>`);
    if (s > 0) {
      parts.push(`<line x1="${cx}" x2="${cx}" y1="${y(m + s).toFixed(1)}" y2="${y(m - s).toFixed(1)}" stroke="black"/>`);
      for (const v of [m + s, m - s]) parts.push(`<line x1="${cx - 8}" x2="${cx + 8}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="black"/>`);
    }
    parts.push(`<text x="${cx}" y="${(y(m + s) - 6).toFixed(1)}" text-anchor="middle">${m.toFixed(1)}</text>`);
    parts.push(`<text x="${cx}" y="${top + plotH + 18}" text-anchor="middle">${esc(r.method)}</text>`);
    parts.push(`<text x="${cx}" y="${top + plotH + 34}" text-anchor="middle" fill="#555" font-size="10">${r.trainableParams.toLocaleString('en-US')} params</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
