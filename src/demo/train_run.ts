// One training run of the page: the bundled encoder + an adapter (any method)
// + a classification head on a labeled set, as `lorakit train --data <file>`
// runs it (the same seeded split, defaults and loop; test/browser_demo.test.ts
// checks the page's adapter against the command's), with the frozen-encoder
// probe beside it. In memory: the page keeps every finished run, and its PEFT
// files are made from the live tensors when downloaded.

import { AdapterSet } from '../adapters/inject.ts';
import { getMethod } from '../adapters/registry.ts';
import { trainDefaultConfig } from '../adapters/train_defaults.ts';
import { splitExamples, SPLIT_SEED } from '../data/split.ts';
import type { EncoderModel } from '../models/types.ts';
import { USE_DEFAULT_TARGETS, USE_MODEL_NAME } from '../models/use_encoder.ts';
import { adapterFiles, type AdapterFiles } from '../peft/adapter_files.ts';
import type { StepInfo } from '../train/loop.ts';
import { accuracy, probeLogits, trainLinearProbe } from '../train/linear_probe.ts';
import { HEAD_B, HEAD_W } from '../train/tasks/classification.ts';
import { ClassificationTrainer, type EncodedExample, type EpochInfo } from '../train/trainer.ts';
import type { LabeledSet } from './labeled_input.ts';

/** The page's settings: what `lorakit train` takes as flags (trainCommand gives them). */
export interface TrainSettings {
  method: string;
  /** Rank and alpha where the method has them (undefined: the method's own default). */
  r?: number;
  alpha?: number;
  targetModules: string[];
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
  maxLen: number;
  headLrScale: number;
  weightDecay: number;
  warmupRatio: number;
  maxGradNorm: number;
  /** Also fit the frozen-encoder linear probe (the baseline). */
  baseline: boolean;
}

/**
 * `lorakit train`'s defaults (src/cli/main.ts), except epochs, learning rate
 * and batch size: the command's are for thousands of reviews, a page is
 * given tens to hundreds of examples.
 */
export const DEFAULT_SETTINGS: TrainSettings = {
  method: 'lora', targetModules: USE_DEFAULT_TARGETS, epochs: 5, lr: 5e-3, batchSize: 16, seed: 42, maxLen: 128,
  headLrScale: 5, weightDecay: 0.01, warmupRatio: 0.06, maxGradNorm: 1, baseline: true,
};

/** The classification job caps its splits (--max-train default 6000, --max-eval 1000); the page does not. */
const CLI_CAPS = { train: 6000, eval: 1000 };

/**
 * The `lorakit train` arguments that train the same adapter in Node from the
 * same data file, every setting spelled out (a changed command-line default
 * cannot make them differ).
 */
export function trainCommand(s: TrainSettings, dataFile: string, split: { train: number; validation: number; test: number }): string[] {
  const config = methodConfigOf(s);
  return [
    'train', '--data', dataFile, '--method', s.method,
    ...(config.r !== undefined ? ['--rank', String(config.r)] : []),
    ...(config.lora_alpha !== undefined ? ['--alpha', String(config.lora_alpha)] : []),
    '--target-modules', s.targetModules.join(','),
    '--epochs', String(s.epochs), '--lr', String(s.lr), '--batch', String(s.batchSize), '--seed', String(s.seed), '--max-len', String(s.maxLen),
    '--head-lr-scale', String(s.headLrScale), '--weight-decay', String(s.weightDecay), '--warmup-ratio', String(s.warmupRatio), '--max-grad-norm', String(s.maxGradNorm),
    ...(split.train > CLI_CAPS.train ? ['--max-train', String(split.train)] : []),
    ...(Math.max(split.validation, split.test) > CLI_CAPS.eval ? ['--max-eval', String(Math.max(split.validation, split.test))] : []),
    ...(s.baseline ? [] : ['--no-baseline']),
  ];
}

/** The method's config: lorakit train's defaults, with the page's rank and alpha where the method has those fields. */
export function methodConfigOf(s: TrainSettings): Record<string, unknown> {
  const defaults = trainDefaultConfig(s.method);
  const config: Record<string, unknown> = { ...defaults };
  if (s.r !== undefined && 'r' in defaults) config.r = s.r;
  if (s.alpha !== undefined && 'lora_alpha' in defaults) config.lora_alpha = s.alpha;
  return config;
}

/** 'train' starts with compiling the training graph (the first step reports when it is done). */
export type Phase = 'embed' | 'probe' | 'train' | 'test';

export interface RunHooks {
  onPhase?: (phase: Phase, total: number) => void;
  /** Examples embedded so far (the probe's phase). */
  onEmbed?: (done: number) => void;
  onStep?: (s: StepInfo) => void;
  onEpoch?: (e: EpochInfo) => void;
  /** Polled after every step: true stops the run there (the adapter keeps what it learned). */
  shouldStop?: () => boolean;
}

export interface TrainedRun {
  settings: TrainSettings;
  methodConfig: Record<string, unknown>;
  data: { source: string; labelNames: string[]; train: number; validation: number; test: number };
  adapters: AdapterSet;
  /** The classification head (weight [C, hidden], bias [C]). */
  head: Map<string, Float32Array>;
  steps: StepInfo[];
  epochs: EpochInfo[];
  /** Stopped by the user before the last step. */
  stopped: boolean;
  testAccuracy: number;
  probeTestAccuracy?: number;
  adapterParams: number;
  seconds: number;
  /** `lorakit train` arguments that make the same adapter in Node from the same file (trainCommand). */
  command: string[];
  /** adapter_config.json + adapter_model.safetensors (+ lorakit_config.json), as `lorakit train` writes them; `warn` hears what PEFT's format cannot hold. */
  files(warn?: (message: string) => void): AdapterFiles;
}

class StopRequested extends Error {}

/** Arguments as a POSIX shell reads them (quoted where needed). */
export function shellWords(args: string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

const now = () => globalThis.performance.now();

export async function trainRun(model: EncoderModel, tokenizer: { encode(text: string): number[] }, set: LabeledSet, s: TrainSettings, hooks: RunHooks = {}): Promise<TrainedRun> {
  const t0 = now();
  const split = splitExamples(set.examples, SPLIT_SEED);
  const encode = (xs: { text: string; label: number }[]): EncodedExample[] => xs.map((x) => ({ ids: tokenizer.encode(x.text).slice(0, s.maxLen), label: x.label }));
  const [train, validation, test] = [encode(split.train), encode(split.validation), encode(split.test)];
  const C = set.labelNames.length;

  // The frozen-encoder baseline, as `lorakit train` fits it: pooled embeddings, a softmax-regression head, best validation epoch.
  let probeTestAccuracy: number | undefined;
  if (s.baseline) {
    hooks.onPhase?.('embed', train.length + validation.length + test.length);
    const frozen = new ClassificationTrainer(model, null, C, { epochs: 1, lr: 1, batchSize: 64, seed: s.seed });
    let done = 0;
    const embed = async (xs: EncodedExample[]) => ({ x: await frozen.embed(xs, (n) => hooks.onEmbed?.((done += n))), labels: xs.map((e) => e.label) });
    try {
      const [tr, va, te] = [await embed(train), await embed(validation), await embed(test)];
      hooks.onPhase?.('probe', 0);
      const probe = trainLinearProbe(tr, va, model.hiddenSize, C, { seed: s.seed });
      probeTestAccuracy = accuracy(probeLogits(probe.head, te.x, te.labels.length, model.hiddenSize, C), te.labels, C);
    } finally {
      await frozen.release();
    }
  }

  const method = getMethod(s.method);
  const methodConfig = methodConfigOf(s);
  const adapters = new AdapterSet(method, method.schema.parse(methodConfig), model.sites, model.weights, { targetModules: s.targetModules, seed: s.seed });
  const steps: StepInfo[] = [];
  const epochs: EpochInfo[] = [];
  const trainer = new ClassificationTrainer(model, adapters, C, {
    epochs: s.epochs, lr: s.lr, headLrScale: s.headLrScale, batchSize: s.batchSize, seed: s.seed,
    maxGradNorm: s.maxGradNorm, weightDecay: s.weightDecay, warmupRatio: s.warmupRatio,
    onStep: (info) => {
      steps.push(info);
      hooks.onStep?.(info);
      if (hooks.shouldStop?.()) throw new StopRequested();
    },
    onEpoch: (e) => {
      epochs.push(e);
      hooks.onEpoch?.(e);
    },
  });
  let stopped = false;
  try {
    hooks.onPhase?.('train', Math.ceil(train.length / s.batchSize) * s.epochs);
    try {
      await trainer.fit(train, validation);
    } catch (e) {
      if (!(e instanceof StopRequested)) throw e;
      stopped = true;
    }
    hooks.onPhase?.('test', test.length);
    const testAccuracy = (await trainer.evaluate(test)).accuracy;
    const head = new Map([...trainer.head].map(([k, v]) => [k, Float32Array.from(v)]));
    const adapterParams = [...adapters.params.values()].reduce((n, p) => n + p.length, 0);
    const data = { source: set.source, labelNames: set.labelNames, train: train.length, validation: validation.length, test: test.length };
    return {
      settings: s, methodConfig, data, adapters, head, steps, epochs, stopped, testAccuracy, probeTestAccuracy, adapterParams, seconds: (now() - t0) / 1000,
      command: trainCommand(s, set.source, data),
      files: (warn = () => {}) =>
        adapterFiles(adapters, {
          baseModel: USE_MODEL_NAME,
          taskType: 'SEQ_CLS',
          modulesToSave: new Map([
            [HEAD_W, { shape: [C, model.hiddenSize], data: head.get(HEAD_W)! }],
            [HEAD_B, { shape: [C], data: head.get(HEAD_B)! }],
          ]),
          // What `lorakit train` records (src/tasks/classification.ts), so `lorakit eval --data <the same file>` finds the test split.
          extra: { labels: set.labelNames, max_length: s.maxLen, data: set.source, split_seed: SPLIT_SEED },
          warn,
        }),
    };
  } finally {
    await trainer.release();
  }
}
