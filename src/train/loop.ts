// The one training loop, for every task (src/train/task.ts) and every adapter
// method: one fused onnxruntime run per step (loss + every trainable
// gradient), the method's hooks, gradient clipping, AdamW with a warmup/decay
// schedule, validation each epoch with early stopping on the task's metric,
// atomic checkpoints with an exact resume, NaN/inf detection that stops with
// the last good state saved, progress callbacks and metrics.jsonl.
//
// Everything random (batch order, dropout masks, inits) derives from the seed
// statelessly (epoch e's order from fork('epoch-e'), step s's masks from
// fork('dropout-s')), so a run resumed from a checkpoint replays the
// uninterrupted one bit for bit.

import { grad, type GradOptions } from '../autodiff/grad.ts';
import { Graph, type Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import { AdapterSet } from '../adapters/inject.ts';
import { adapterFeeds } from '../adapters/feeds.ts';
import { adapterLossTerm, adapterStepMetrics, loadHookState, loadRunState, ownedParams, runFitHook, runStartHook, runStepHook, saveHookState, saveRunState } from '../adapters/hooks.ts';
import { outIn64 } from '../adapters/bases.ts';
import type { StoredTensor } from '../adapters/types.ts';
import { plainLinear } from '../models/linear.ts';
import type { LinearFn, LinearSite, WeightMap } from '../models/types.ts';
import type { AdamWGroup } from '../optim/adamw.ts';
import { clipFactor, clipGradNorm, globalGradNorm } from '../optim/clip.ts';
import { makeSchedule } from '../optim/schedules.ts';
import { CompiledGraph, type HostTensor } from '../runtime/session.ts';
import { Rng } from '../util/rng.ts';
import { float32Of } from '../quant/quantized_weights.ts';
import { RunFolder } from './run_folder.ts';
import { NormMonitor, peakOf, type NormPeak, type NormRecord } from './norm_monitor.ts';
import { lossOf, type TrainTask } from './task.ts';
import { makeOptimizer, type OptimizerSpec } from './optimizers.ts';

export interface FitOptions<B = unknown> {
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
  /** Decoupled weight decay (default 0.01, torch's AdamW default). */
  weightDecay?: number;
  /** Linear warmup over this fraction of the steps (default 0.06). */
  warmupRatio?: number;
  /** After warmup: 'linear' decay to 0 (default), 'cosine', or 'constant'. */
  schedule?: 'linear' | 'cosine' | 'constant';
  /** Clip the global gradient norm to this (off by default). */
  maxGradNorm?: number;
  /** Extra parameter groups (LoRA+), matched before the task's own (a head's lr scale). */
  optimizerGroups?: AdamWGroup[];
  /** The update rule (default AdamW); its state is checkpointed with the run. */
  optimizer?: OptimizerSpec;
  /**
   * Full fine-tuning: the model's weights are trained too, in place (every
   * float32 weight the task's graph reads; a tied weight once). `matrices`
   * names the 2-D projection weights GaLore may project.
   */
  full?: { weights: WeightMap; matrices?: ReadonlySet<string> };
  /** Stop after this many epochs without a better validation metric (needs validation data). */
  patience?: number;
  /** onnxruntime intra-op threads. */
  threads?: number;
  /**
   * Gradient checkpointing: the training graph keeps only each transformer
   * sublayer's input from the forward pass and recomputes the rest in the
   * backward pass (src/autodiff/checkpoint.ts): far less activation memory at
   * long sequences, for about one more forward pass per step.
   */
  gradCheckpoint?: boolean;
  /** false: onnxruntime keeps no prepacked copy of the frozen weights (SessionOptions.prepackWeights): less resident memory, slower products. */
  prepackWeights?: boolean;
  /** Checkpoints (outDir/checkpoints) and metrics (outDir/metrics.jsonl) go here; omit for an in-memory run (a browser has no folders). */
  outDir?: string;
  /** Continue from the newest checkpoint in outDir. */
  resume?: boolean;
  /** Save a checkpoint every this many steps (besides every epoch end). */
  checkpointEvery?: number;
  /** Checkpoints kept (default 3). */
  keepCheckpoints?: number;
  /** Stop after this many optimizer steps in this process (simulates a crash in tests). */
  stopAfterSteps?: number;
  /**
   * The LoRA computational-limits monitor (src/train/norm_monitor.ts): per
   * attention layer, the largest entry of the adapted Q, K and V projections
   * against √(ln L), read from every training step's forward pass and written
   * to metrics.jsonl (event 'norms') every `every` steps (default 1) and at step 1.
   */
  monitorNorms?: { every?: number };
  onNorms?: (info: { step: number } & NormRecord) => void;
  /** The adapter's values were loaded (train --from-adapter): the method's data-dependent init (beforeFit) must not replace them. */
  adapterLoaded?: boolean;
  /**
   * Called with each step's gradients and the batch, before the optimizer moves anything: the
   * parameters are still the ones the gradients were taken at (bench/lorapro_claim.ts compares each
   * step with full fine-tuning's from the same point). `clipScale` is this step's clipping factor (1
   * when not clipped); the gradients are already multiplied by it when `gradsClipped`, and are the
   * unclipped ones when the optimizer applies the factor itself (LoRA-Pro).
   */
  beforeStep?: (info: { step: number; batch: B; lr: number; grads: ReadonlyMap<string, Float32Array>; params: ReadonlyMap<string, Float32Array>; clipScale: number; gradsClipped: boolean }) => void | Promise<void>;
  onStep?: (info: StepInfo) => void;
  onEval?: (info: EvalInfo) => void;
}

export interface StepInfo { step: number; totalSteps: number; epoch: number; loss: number; lr: number; gradNorm: number; tokensPerSec: number; /** The task's own figures (GRPO's reward). */ task?: Record<string, number> }
export interface EvalInfo { epoch: number; step: number; metrics: Record<string, number>; improved: boolean }

export interface FitResult {
  /** true when stopped by stopAfterSteps (the run can be resumed). */
  stopped: boolean;
  steps: number;
  history: EvalInfo[];
  /** The best validation value of the task's metric (undefined without validation data). */
  best?: number;
  /** Mean training loss of each epoch finished in this process or before it (from the checkpoint). */
  epochLosses: number[];
  /** Bytes of the optimizer's state at the end (moments, projectors). */
  optimizerStateBytes: number;
  /** With gradCheckpoint: the segments the training graph recomputes in its backward pass. */
  recomputedSegments?: number;
  /** With monitorNorms: the largest Γ/√(ln L) of any step of the run (resumed runs included), its layer and step. */
  normsPeak?: NormPeak;
}

export class NonFiniteLossError extends Error {
  constructor(readonly step: number, readonly loss: number, what = 'loss', checkpoint?: string) {
    super(
      `Training diverged: the ${what} is ${loss} at step ${step}. ` +
        'Lower the learning rate (--lr), enable gradient clipping (--max-grad-norm), or check the data for empty texts / invalid labels.' +
        (checkpoint ? ` The state before this step is saved in ${checkpoint}: change a setting and continue with --resume.` : ''),
    );
    this.name = 'NonFiniteLossError';
  }
}

interface LoopState {
  step: number;
  epoch: number;
  batchInEpoch: number;
  bestVal: number | null;
  badEpochs: number;
  history: EvalInfo[];
  epochLossSum: number;
  epochLossCount: number;
  epochLosses: number[];
  normsPeak?: NormPeak;
}

/**
 * The graph the loop runs for a task over a model whose projections go
 * through `linear` (an adapter's, or the plain base): 'train' outputs the loss
 * and `grad.<name>` of every trainable tensor in it (the fused step); 'eval'
 * outputs the loss (when the task gives one) and the task's outputs.
 */
export function buildTaskGraph(
  task: TrainTask<any, any>,
  linear: LinearFn,
  mode: 'train' | 'eval',
  opts: { trainWeights?: ReadonlySet<string>; lossTerm?: (g: Graph) => Value | null; gradCheckpoint?: GradOptions['checkpoint'] } = {},
): { graph: Graph; trainable: string[]; recomputedSegments: number } {
  const g = new Graph(`${task.name}-${mode}`);
  if (opts.trainWeights) g.trainableWeights = (name) => opts.trainWeights!.has(name);
  const built = task.build(g, linear, mode);
  const { outputs } = built;
  let loss = built.loss;
  // A method's own term of the training loss (hooks.lossTerm): minimized with the task's, and reported apart.
  const extra = loss && mode === 'train' ? opts.lossTerm?.(g) : null;
  if (loss && extra) {
    g.output('loss.adapter', extra);
    loss = op.add(loss, extra);
  }
  if (loss) g.output('loss', loss);
  for (const [k, v] of Object.entries(outputs ?? {})) g.output(k, v);
  if (mode === 'eval') return { graph: g, trainable: [], recomputedSegments: 0 };
  if (!loss) throw new Error(`${task.name}: the task's training graph has no loss`);
  const params = g.params();
  if (!params.length) throw new Error(`${task.name}: nothing to train (attach an adapter)`);
  const stats = { recomputedSegments: 0 };
  const grads = grad(loss, params, undefined, { checkpoint: opts.gradCheckpoint, stats });
  params.forEach((p, i) => g.output(`grad.${p.leaf!.name}`, grads[i]));
  return { graph: g, trainable: params.map((p) => p.leaf!.name), recomputedSegments: stats.recomputedSegments };
}

export class Trainer<E, B> {
  private graphs: Partial<Record<'train' | 'eval', Promise<CompiledGraph>>> = {};
  /** Full fine-tuning: the model weights the task's graph reads, trained in place. */
  private readonly fullWeights: WeightMap = new Map();
  /** The norm monitor of the training graph (FitOptions.monitorNorms). */
  readonly monitor: NormMonitor | null;
  /** Segments the compiled training graph recomputes (FitOptions.gradCheckpoint). */
  private recomputedSegments = 0;

  constructor(
    readonly task: TrainTask<E, B>,
    readonly adapters: AdapterSet | null,
    readonly opts: NoInfer<FitOptions<B>>,
  ) {
    if (!Number.isFinite(opts.lr) || opts.lr <= 0) throw new Error(`Learning rate must be a positive finite number, got ${opts.lr}`);
    if (!(Number.isInteger(opts.batchSize) && opts.batchSize >= 1)) throw new Error(`Batch size must be an integer ≥ 1, got ${opts.batchSize}`);
    if (!(Number.isInteger(opts.epochs) && opts.epochs >= 1)) throw new Error(`Epochs must be an integer ≥ 1, got ${opts.epochs}`);
    const every = opts.monitorNorms?.every;
    if (every !== undefined && !(Number.isInteger(every) && every >= 1)) throw new Error(`monitorNorms.every must be an integer ≥ 1, got ${every}`);
    this.monitor = opts.monitorNorms ? new NormMonitor() : null;
    if (opts.full) {
      if (adapters) throw new Error('Full fine-tuning trains the weights themselves: leave the adapter out');
      // Which weights the graph reads (the builders name them): a graph built once, not compiled.
      const names = new Set([...opts.full.weights].filter(([, w]) => w.data instanceof Float32Array).map(([k]) => k));
      const { trainable } = buildTaskGraph(task, plainLinear, 'train', { trainWeights: names });
      // The task's own tensors keep their names (a folder's own `classifier.weight` of another size is not the task's head).
      for (const k of trainable) if (opts.full.weights.has(k) && !task.params.has(k)) this.fullWeights.set(k, opts.full.weights.get(k)!);
    }
  }

  /** Every trainable tensor (adapter or, fully fine-tuned, the model's weights; then the task's own), by name, live. */
  params(): Map<string, Float32Array> {
    return new Map([
      ...(this.adapters?.params ?? []),
      ...[...this.fullWeights].map(([k, w]) => [k, w.data] as const),
      ...[...this.task.params].map(([k, t]) => [k, t.data] as const),
    ]);
  }

  private linear(training: boolean): LinearFn {
    const fn = this.adapters ? this.adapters.linear({ training }) : plainLinear;
    return training && this.monitor ? this.monitor.wrap(fn) : fn;
  }

  private compiled(mode: 'train' | 'eval'): Promise<CompiledGraph> {
    this.graphs[mode] ??= (async () => {
      const { graph, trainable, recomputedSegments } = buildTaskGraph(this.task, this.linear(mode === 'train'), mode, {
        trainWeights: this.fullWeights.size ? new Set(this.fullWeights.keys()) : undefined,
        lossTerm: (g) => adapterLossTerm(this.adapters, g),
        gradCheckpoint: this.opts.gradCheckpoint,
      });
      const unused = [...this.params().keys()].filter((k) => mode === 'train' && !trainable.includes(k));
      if (mode === 'train') this.recomputedSegments = recomputedSegments;
      if (unused.length) throw new Error(`${this.task.name}: trainable tensors the task's graph does not use: ${unused.slice(0, 5).join(', ')}${unused.length > 5 ? '…' : ''}`);
      return CompiledGraph.compile(graph, { threads: this.opts.threads, prepackWeights: this.opts.prepackWeights });
    })();
    return this.graphs[mode]!;
  }

  /** A batch's full feeds: the task's inputs, every trainable tensor, the adapter's state and (training) its dropout masks. */
  private feeds(batch: B, training: boolean, step = 0): Record<string, HostTensor> {
    const f = this.task.feeds(batch);
    for (const [k, t] of this.task.params) f[k] = { data: t.data, dims: t.shape };
    for (const [k, w] of this.fullWeights) f[k] = { data: w.data, dims: w.shape };
    const dropout = training ? { batch: f, rng: new Rng(this.opts.seed).fork(`dropout-${step}`) } : undefined;
    return Object.assign(f, adapterFeeds(this.adapters, { training, dropout, at: training ? { step, seed: this.opts.seed } : undefined }));
  }

  /** Eval-graph outputs of every batch of `data` (in data order). */
  async run(data: readonly E[]): Promise<{ batch: B; out: Record<string, HostTensor> }[]> {
    const cg = await this.compiled('eval');
    const res: { batch: B; out: Record<string, HostTensor> }[] = [];
    for (const batch of this.task.batches(data, this.opts.batchSize, null)) res.push({ batch, out: await cg.run(this.feeds(batch, false)) });
    return res;
  }

  /**
   * One batch's loss and ∂L/∂θ of every trainable tensor at the current
   * parameters, nothing stepped (full fine-tuning: the gradient of every weight).
   */
  async gradients(batch: B): Promise<{ loss: number; grads: Map<string, Float32Array> }> {
    const out = await (await this.compiled('train')).run(this.feeds(batch, true));
    return { loss: lossOf(out), grads: new Map([...this.params().keys()].map((k) => [k, out[`grad.${k}`].data as Float32Array])) };
  }

  /** The task's metrics on `data` with the current parameters. */
  async evaluate(data: readonly E[]): Promise<Record<string, number>> {
    return this.task.evaluate(await this.run(data));
  }

  /**
   * Σ over the first `batches` training batches of ∂L/∂W for the sites'
   * frozen weights ([out, in], float64): the task's loss on the base model
   * (the adapter left out), W made a parameter of a separate graph.
   */
  async weightGradients(train: readonly E[], sites: LinearSite[], o: { batches: number; batchSize: number }): Promise<Map<string, Float64Array>> {
    const batches = this.task.batches(train, o.batchSize, new Rng(this.opts.seed).fork('weight-grads')).slice(0, o.batches);
    const sum = new Map<string, Float64Array>();
    await this.weightGradientsEach(batches, sites, (grads) => {
      for (const [name, gr] of grads) {
        const acc = sum.get(name);
        if (!acc) sum.set(name, gr);
        else for (let i = 0; i < acc.length; i++) acc[i] += gr[i];
      }
    });
    return sum;
  }

  /**
   * ∂L/∂W of each batch for the sites' frozen weights ([out, in], float64, by
   * site name), L the task's loss of that batch on the base model (the adapter
   * left out): handed to `onBatch` one batch at a time (FILA's Fisher sums
   * squares of them).
   */
  async weightGradientsEach(batches: readonly B[], sites: LinearSite[], onBatch: (grads: Map<string, Float64Array>, batch: B) => void): Promise<void> {
    const g = new Graph(`${this.task.name}-weight-grads`);
    const wanted = new Map(sites.map((s) => [s.name, s]));
    const linear: LinearFn = (site, x, W, b) => {
      if (wanted.has(site.name)) {
        const w = this.task.weights.get(site.weightKey);
        if (!w) throw new Error(`weight gradients: the model has no weight '${site.weightKey}' for '${site.name}'`);
        W = g.leaf(`W.${site.name}`) ?? g.param(`W.${site.name}`, w.shape);
      }
      return plainLinear(site, x, W, b);
    };
    const { loss } = this.task.build(g, linear, 'train');
    if (!loss) throw new Error(`${this.task.name}: the task's training graph has no loss`);
    const wParams = g.params().filter((p) => p.leaf!.name.startsWith('W.'));
    const missing = sites.filter((s) => !wParams.some((p) => p.leaf!.name === `W.${s.name}`));
    if (missing.length) throw new Error(`weight gradients: ${missing.map((s) => `'${s.name}'`).join(', ')} not used by the ${this.task.name} graph`);
    const grads = grad(loss, wParams);
    wParams.forEach((p, i) => g.output(`grad.${p.leaf!.name}`, grads[i]));
    const cg = await CompiledGraph.compile(g, { threads: this.opts.threads });
    try {
      for (const batch of batches) {
        const f = this.task.feeds(batch);
        for (const [k, t] of this.task.params) f[k] = { data: t.data, dims: t.shape };
        for (const s of sites) {
          const w = this.task.weights.get(s.weightKey)!;
          f[`W.${s.name}`] = { data: float32Of(w.data), dims: w.shape }; // a quantized base: the dequantized weight
        }
        const out = await cg.run(f);
        onBatch(new Map(sites.map((s) => [s.name, outIn64(s, out[`grad.W.${s.name}`].data as Float32Array)])), batch);
      }
    } finally {
      await cg.release();
    }
  }

  private epochBatches(train: readonly E[], epoch: number): B[] {
    return this.task.batches(train, this.opts.batchSize, new Rng(this.opts.seed).fork(`epoch-${epoch}`));
  }

  async fit(data: { train: readonly E[]; validation?: readonly E[] }): Promise<FitResult> {
    const o = this.opts;
    const { train } = data;
    const validation = data.validation && data.validation.length ? data.validation : undefined;
    if (!train.length) throw new Error(`${this.task.name}: no training examples`);
    if (!this.adapters && !this.fullWeights.size && this.task.params.size === 0) throw new Error(`${this.task.name}: nothing to train (attach an adapter)`);
    if (o.patience !== undefined && !validation) throw new Error('Early stopping (patience) needs validation data');
    const params = this.params();
    const stepsPerEpoch = this.epochBatches(train, 0).length;
    const totalSteps = stepsPerEpoch * o.epochs;
    const warmupSteps = Math.round((o.warmupRatio ?? 0.06) * totalSteps);
    const kind = o.schedule ?? 'linear';
    const schedule = makeSchedule(kind === 'constant' ? { kind, warmupSteps } : { kind, warmupSteps, totalSteps });
    const matrices = new Map<string, [number, number]>();
    for (const k of o.full?.matrices ?? []) {
      const w = this.fullWeights.get(k);
      if (w && w.shape.length === 2) matrices.set(k, [w.shape[0], w.shape[1]]);
    }
    // Tensors a method updates itself (hooks.ownedParams: SoRA's gates) stay out of the shared optimizer.
    const owned = ownedParams(this.adapters);
    const shared = owned.size ? new Map([...params].filter(([k]) => !owned.has(k))) : params;
    const optimizer = makeOptimizer(o.optimizer ?? { kind: 'adamw' }, {
      params: shared, adapters: this.adapters, weightDecay: o.weightDecay ?? 0.01, matrices,
      groups: [...(o.optimizerGroups ?? []), ...(this.task.optimizerGroups ?? [])],
    });
    let state: LoopState = { step: 0, epoch: 0, batchInEpoch: 0, bestVal: null, badEpochs: 0, history: [], epochLossSum: 0, epochLossCount: 0, epochLosses: [] };
    let best: Map<string, Float32Array> | null = null;
    // One run per folder, locked (a dead run's lock is taken over); a fresh run clears an earlier one's checkpoints and metrics.
    const folder = o.outDir ? RunFolder.open(o.outDir, { resume: !!o.resume }) : null;
    // The method's state at the best epoch (its saved per-module state and run state: AdaLoRA's mask,
    // IncreLoRA's components), restored with the best weights so the two always describe one adapter.
    let bestState: { hook: Record<string, Record<string, StoredTensor>>; run: unknown } | undefined;
    let runState: unknown;

    try {
      let resumed: { step: number; epoch: number; from: string } | null = null;
      if (o.resume && folder) {
        const ck = await folder.latest();
        if (ck) {
          for (const [k, v] of ck.params) {
            const p = params.get(k);
            if (!p) throw new Error(`Checkpoint ${ck.path} has parameter '${k}' that this run does not: was it made with other options (method, target modules, task)?`);
            if (p.length !== v.length) throw new Error(`Checkpoint ${ck.path}: parameter '${k}' has ${v.length} values, this run's has ${p.length}: was it made with other options?`);
            p.set(v);
          }
          optimizer.loadStateDict(ck.optimizer as any);
          const { hookState, runState: saved, bestState: savedBest, ...t } = ck.trainer as any;
          runState = saved;
          bestState = savedBest;
          // Non-trainable hook state (SMoRA's β) continues where it was, not from its initial value.
          if (this.adapters && hookState) loadHookState(this.adapters, Object.entries(hookState as Record<string, Record<string, StoredTensor>>));
          state = { ...state, ...t };
          best = ck.best ?? null;
          resumed = { step: state.step, epoch: state.epoch, from: ck.path };
        }
      }
      folder?.startLog(resumed);

      runStartHook(this.adapters);
      // A resumed run's method state that is not part of the adapter (its own optimizer, importance averages).
      loadRunState(this.adapters, runState);
      if (state.step === 0 && !o.adapterLoaded) {
        await runFitHook(this.adapters, { params, seed: o.seed, weightGradients: (sites, w) => this.weightGradients(train, sites, w) });
      }
      const cg = await this.compiled('train');
      let stepsThisRun = 0;
      const save = async () => {
        if (!folder) return undefined;
        const hookState = this.adapters ? Object.fromEntries(saveHookState(this.adapters)) : {};
        const run = saveRunState(this.adapters) as any;
        return folder.save({ step: state.step, params, optimizer: optimizer.stateDict(), trainer: { ...state, hookState, ...(run !== undefined && { runState: run }), ...(bestState && { bestState }) }, best: best ?? undefined }, { keepLast: o.keepCheckpoints });
      };
      const diverged = async (what: string, value: number) => {
        const at = await save(); // the state before this step: still finite, and resumable
        folder?.write({ event: 'diverged', step: state.step, what, value });
        return new NonFiniteLossError(state.step, value, what, at);
      };

      for (; state.epoch < o.epochs; state.epoch++, state.batchInEpoch = 0) {
        const batches = this.epochBatches(train, state.epoch);
        for (; state.batchInEpoch < batches.length; state.batchInEpoch++) {
          if (o.stopAfterSteps !== undefined && stepsThisRun >= o.stopAfterSteps) return { stopped: true, steps: state.step, history: state.history, best: state.bestVal ?? undefined, epochLosses: state.epochLosses, optimizerStateBytes: optimizer.stateBytes(), normsPeak: state.normsPeak, ...(o.gradCheckpoint && { recomputedSegments: this.recomputedSegments }) };
          const batch = batches[state.batchInEpoch];
          const t0 = performance.now();
          await this.task.prepare?.(batch, { step: state.step, seed: o.seed, adapters: this.adapters });
          const feeds = this.feeds(batch, true, state.step);
          const out = await cg.run(feeds);
          const loss = lossOf(out);
          if (!Number.isFinite(loss)) throw await diverged('loss', loss);
          const grads = new Map<string, Float32Array>();
          for (const k of params.keys()) grads.set(k, out[`grad.${k}`].data as Float32Array);
          // One pass over the gradients: clipping measures the norm (and leaves non-finite gradients untouched).
          // A rule that applies the clip itself (LoRA-Pro) gets the unclipped gradients and the factor.
          const clipsItself = optimizer.appliesClip === true;
          let gradNorm: number, clipScale = 1;
          if (o.maxGradNorm && !clipsItself) ({ totalNorm: gradNorm, scale: clipScale } = clipGradNorm(grads, o.maxGradNorm));
          else {
            gradNorm = globalGradNorm(grads);
            if (o.maxGradNorm) clipScale = clipFactor(gradNorm, o.maxGradNorm);
          }
          if (!Number.isFinite(gradNorm)) throw await diverged('gradient norm', gradNorm);
          const lr = o.lr * schedule(state.step);
          const hookCtx = { step: state.step, totalSteps, lr, baseLr: o.lr, warmupSteps, seed: o.seed, params, grads, outputs: out };
          runStepHook('beforeStep', this.adapters, hookCtx);
          await o.beforeStep?.({ step: state.step, batch, lr, grads, params, clipScale, gradsClipped: !clipsItself });
          await optimizer.step(owned.size ? new Map([...grads].filter(([k]) => !owned.has(k))) : grads, lr, clipsItself ? { clipScale } : undefined);
          runStepHook('optimizerStep', this.adapters, hookCtx);
          runStepHook('afterStep', this.adapters, { ...hookCtx, step: state.step + 1 });
          state.step++;
          stepsThisRun++;
          state.epochLossSum += loss;
          state.epochLossCount++;
          const taskFigures = this.task.stepMetrics?.(batch, out);
          const info: StepInfo = { step: state.step, totalSteps, epoch: state.epoch, loss, lr, gradNorm, tokensPerSec: this.task.tokens(batch) / ((performance.now() - t0) / 1000), ...(taskFigures && { task: taskFigures }) };
          o.onStep?.(info);
          const extra = out['loss.adapter'] ? { adapterLoss: Number(out['loss.adapter'].data[0]) } : {};
          const figures = folder ? adapterStepMetrics(this.adapters, params, state.step) : undefined;
          folder?.write({ event: 'step', ...info, ...extra, ...(figures && { adapter: figures }) });
          if (this.monitor?.projections.length) {
            const rec = this.monitor.read(out, feeds);
            const peak = peakOf(rec, state.step);
            const key = (p?: NormPeak) => (p ? (Number.isNaN(p.ratio) ? -Infinity : p.ratio) : -Infinity);
            if (peak && (!state.normsPeak || key(peak) > key(state.normsPeak))) state.normsPeak = peak;
            if (state.step === 1 || state.step % (o.monitorNorms!.every ?? 1) === 0) {
              folder?.write({ event: 'norms', step: state.step, ...rec });
              o.onNorms?.({ step: state.step, ...rec });
            }
          }
          if (o.checkpointEvery && state.step % o.checkpointEvery === 0) {
            state.batchInEpoch++;
            await save();
            state.batchInEpoch--;
          }
        }
        state.epochLosses.push(state.epochLossSum / Math.max(1, state.epochLossCount));
        state.epochLossSum = 0;
        state.epochLossCount = 0;
        let stop = false;
        if (validation) {
          const metrics = await this.evaluate(validation);
          const v = metrics[this.task.metric.name];
          const improved = state.bestVal === null || (this.task.metric.higherIsBetter ? v > state.bestVal : v < state.bestVal);
          if (improved) {
            state.bestVal = v;
            state.badEpochs = 0;
            best = new Map([...params].map(([k, p]) => [k, Float32Array.from(p)]));
            if (this.adapters) bestState = { hook: Object.fromEntries(saveHookState(this.adapters)), run: structuredClone(saveRunState(this.adapters) ?? null) };
          } else state.badEpochs++;
          const info: EvalInfo = { epoch: state.epoch, step: state.step, metrics, improved };
          state.history.push(info);
          o.onEval?.(info);
          folder?.write({ event: 'eval', ...info });
          stop = o.patience !== undefined && state.badEpochs >= o.patience;
        }
        state.epoch++;
        state.batchInEpoch = 0;
        await save();
        state.epoch--;
        if (stop) break;
      }
      // Early stopping keeps the best validation weights.
      if (best) for (const [k, v] of best) params.get(k)!.set(v);
      if (best && bestState && this.adapters) {
        loadHookState(this.adapters, Object.entries(bestState.hook));
        loadRunState(this.adapters, bestState.run);
      }
      return { stopped: false, steps: state.step, history: state.history, best: state.bestVal ?? undefined, epochLosses: state.epochLosses, optimizerStateBytes: optimizer.stateBytes(), normsPeak: state.normsPeak, ...(o.gradCheckpoint && { recomputedSegments: this.recomputedSegments }) };
    } finally {
      await optimizer.release?.();
      folder?.close();
    }
  }

  async release(): Promise<void> {
    for (const p of Object.values(this.graphs)) await (await p)?.release();
    this.graphs = {};
    await this.task.release?.();
  }
}

/** Trains `adapters` (and the task's own tensors) on `data`; see Trainer. */
export async function fit<E, B>(task: TrainTask<E, B>, adapters: AdapterSet | null, data: { train: readonly E[]; validation?: readonly E[] }, options: NoInfer<FitOptions<B>>): Promise<FitResult> {
  const t = new Trainer(task, adapters, options);
  try {
    return await t.fit(data);
  } finally {
    await t.release();
  }
}
