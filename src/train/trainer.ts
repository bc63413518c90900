// Sequence classification with an adapter, as one object: the
// classification task (src/train/tasks/classification.ts) trained by the one
// loop (src/train/loop.ts). Kept as the convenient entry point for encoders
// (the README's example, the main job, the probe's embeddings).

import type { AdapterSet } from '../adapters/inject.ts';
import type { EncoderModel } from '../models/types.ts';
import type { AdamWGroup } from '../optim/adamw.ts';
import { Trainer, type EvalInfo, type FitOptions, type StepInfo } from './loop.ts';
import type { OptimizerSpec } from './optimizers.ts';
import { ClassificationTask, type EncodedExample } from './tasks/classification.ts';

export { NonFiniteLossError, type StepInfo } from './loop.ts';
export type { EncodedExample };

export interface TrainOptions {
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
  /** Learning-rate multiplier for the classification head (it starts from scratch). */
  headLrScale?: number;
  /** Extra parameter groups, matched before the head's (e.g. LoRA+: loraPlusGroups(16)). */
  optimizerGroups?: AdamWGroup[];
  /** The update rule (default AdamW). */
  optimizer?: OptimizerSpec;
  /** Full fine-tuning: the encoder's weights train too (see FitOptions.full). */
  full?: FitOptions['full'];
  weightDecay?: number;
  warmupRatio?: number;
  schedule?: 'linear' | 'cosine' | 'constant';
  maxGradNorm?: number;
  /** Stop after this many epochs without validation improvement. */
  patience?: number;
  buckets?: number[];
  threads?: number;
  /** See FitOptions.gradCheckpoint and FitOptions.prepackWeights. */
  gradCheckpoint?: boolean;
  prepackWeights?: boolean;
  /** Checkpoints and metrics go here (omit for an in-memory run). */
  outDir?: string;
  resume?: boolean;
  checkpointEvery?: number;
  /** Stop after this many optimizer steps in this process (used to simulate a crash in tests). */
  stopAfterSteps?: number;
  /** The norm monitor (FitOptions.monitorNorms). */
  monitorNorms?: FitOptions['monitorNorms'];
  /** See FitOptions.adapterLoaded. */
  adapterLoaded?: boolean;
  onStep?: (info: StepInfo) => void;
  onEpoch?: (info: EpochInfo) => void;
}

export interface EpochInfo { epoch: number; valAccuracy: number; valLoss: number; improved: boolean }
export interface EvalResult { accuracy: number; loss: number; predictions: number[] }

const epochInfo = (e: EvalInfo): EpochInfo => ({ epoch: e.epoch, valAccuracy: e.metrics.accuracy, valLoss: e.metrics.loss, improved: e.improved });

export class ClassificationTrainer {
  readonly task: ClassificationTask;
  private trainer: Trainer<EncodedExample, ReturnType<ClassificationTask['batches']>[number]>;

  constructor(
    readonly model: EncoderModel,
    readonly adapters: AdapterSet | null,
    readonly numLabels: number,
    readonly opts: TrainOptions,
  ) {
    this.task = new ClassificationTask(model, { numLabels, seed: opts.seed, buckets: opts.buckets, headLrScale: opts.headLrScale });
    this.trainer = new Trainer(this.task, adapters, {
      ...opts,
      onEval: opts.onEpoch ? (e) => opts.onEpoch!(epochInfo(e)) : undefined,
    });
  }

  /** The classification head's live tensors (weight [C, H], bias [C]). */
  get head(): Map<string, Float32Array> {
    return this.task.head;
  }

  /** All trainable parameters (adapter + head), by name. */
  params(): Map<string, Float32Array> {
    return this.trainer.params();
  }

  async evaluate(data: EncodedExample[]): Promise<EvalResult> {
    return this.task.scores(await this.trainer.run(data));
  }

  /** Pooled encoder outputs [N, hidden] in the order of `data`. */
  async embed(data: EncodedExample[], onBatch?: (n: number) => void): Promise<Float32Array> {
    const h = this.model.hiddenSize;
    const out = new Float32Array(data.length * h);
    for (const { batch, out: o } of await this.trainer.run(data)) {
      const pooled = o.pooled.data as Float32Array;
      for (let i = 0; i < batch.B; i++) out.set(pooled.subarray(i * h, (i + 1) * h), batch.index[i] * h);
      onBatch?.(batch.B);
    }
    return out;
  }

  async fit(train: EncodedExample[], validation: EncodedExample[]) {
    const r = await this.trainer.fit({ train, validation });
    return { stopped: r.stopped, history: r.history.map(epochInfo), bestValAccuracy: r.best ?? -Infinity, optimizerStateBytes: r.optimizerStateBytes, normsPeak: r.normsPeak };
  }

  async release() {
    await this.trainer.release();
  }
}
