// What a training task gives the one loop (src/train/loop.ts): its loss
// graph over a model with an adapter, its batches, the inputs of a batch, the
// trainable tensors it owns beside the adapter (a classification or ranking
// head) and its validation metrics. Classification, causal LM, seq2seq,
// ranking and contrastive embedding are tasks (src/train/tasks/); the loop
// knows none of them.

import type { Graph, Value } from '../graph/ir.ts';
import type { LinearFn, WeightMap } from '../models/types.ts';
import type { AdamWGroup } from '../optim/adamw.ts';
import type { HostTensor } from '../runtime/session.ts';
import type { Rng } from '../util/rng.ts';
import type { AdapterSet } from '../adapters/inject.ts';

/** What a task's `prepare` may use: the step about to run, the run's seed, the adapter being trained. */
export interface PrepareContext {
  step: number;
  seed: number;
  adapters: AdapterSet | null;
}

export type TaskKind = 'classification' | 'causal-lm' | 'seq2seq' | 'rerank' | 'embed' | 'align' | 'mlm' | 'grpo';
export const TASK_KINDS: readonly TaskKind[] = ['classification', 'causal-lm', 'seq2seq', 'rerank', 'embed', 'align', 'mlm', 'grpo'];
/** The kinds trained on labelled data, whose loss falls as they learn (GRPO's loss is no such measure: its reward is). */
export type SupervisedTaskKind = Exclude<TaskKind, 'grpo'>;
export const SUPERVISED_TASK_KINDS = TASK_KINDS.filter((k): k is SupervisedTaskKind => k !== 'grpo');

/** A trainable tensor a task owns (live: the loop trains it in place). */
export interface TrainTensor {
  shape: number[];
  data: Float32Array;
}

export interface TaskGraph {
  /** The scalar loss the loop minimizes (train mode); in eval mode optional (then `evaluate` computes its own). */
  loss?: Value;
  /** Outputs the task's `evaluate` reads in eval mode (logits, scores...); in train mode also returned by each step. */
  outputs?: Record<string, Value>;
}

/** The validation metric early stopping and the best checkpoint follow. */
export interface TaskMetric {
  name: string;
  higherIsBetter: boolean;
}

export interface TrainTask<E = unknown, B = unknown> {
  readonly kind: TaskKind;
  /** Graph names and messages. */
  readonly name: string;
  /** PEFT's task_type for adapter_config.json ('SEQ_CLS', 'CAUSAL_LM', 'SEQ_2_SEQ_LM', 'FEATURE_EXTRACTION'). */
  readonly peftTaskType: string;
  /** Trainable tensors beside the adapter, by graph name (empty for LM tasks). */
  readonly params: Map<string, TrainTensor>;
  readonly metric: TaskMetric;
  /** The model's frozen weights (for the frozen-weight gradients of data-dependent inits). */
  readonly weights: WeightMap;
  /** Optimizer settings for the task's own tensors (e.g. a head's learning-rate multiplier). */
  readonly optimizerGroups?: AdamWGroup[];
  /**
   * Adds the batch inputs and the model (through `linear`, which inserts the
   * adapter) to `g`, and returns the loss. Task-owned tensors are `g.param`s
   * named as in `params`.
   */
  build(g: Graph, linear: LinearFn, mode: 'train' | 'eval'): TaskGraph;
  /**
   * One epoch's batches: shuffled by `rng` (training; the loop derives it
   * from the seed and the epoch, so a resumed run sees the same batches), in
   * data order without it (evaluation).
   */
  batches(data: readonly E[], batchSize: number, rng: Rng | null): B[];
  /** The graph inputs of a batch (not parameters: the loop feeds those). */
  feeds(batch: B): Record<string, HostTensor>;
  /**
   * Work a training batch needs before its step that depends on the current
   * parameters (GRPO samples and scores completions with the policy). Must
   * derive its randomness from ctx.step and ctx.seed, so a resumed run replays.
   */
  prepare?(batch: B, ctx: PrepareContext): Promise<void>;
  /** Figures of a training step logged with it (GRPO's mean reward). */
  stepMetrics?(batch: B, out: Record<string, HostTensor>): Record<string, number>;
  /** Frees what the task compiled itself (GRPO's sampler). */
  release?(): Promise<void>;
  /** Tokens a batch holds (for throughput). */
  tokens(batch: B): number;
  /** Validation metrics (including `metric.name`) from each eval batch's outputs ('loss' and `outputs`). */
  evaluate(results: { batch: B; out: Record<string, HostTensor> }[]): Record<string, number>;
}

/** The loss of `out` as a number. */
export function lossOf(out: Record<string, HostTensor>): number {
  return Number(out.loss.data[0]);
}
