// The training loop for sequence classification with an adapter: one fused
// onnxruntime run per step (loss + all trainable gradients), AdamW in TS,
// validation each epoch with early stopping, atomic checkpoints and exact
// resume. Everything random (batch order, dropout masks, init) derives from
// the seed statelessly, so a resumed run replays the uninterrupted one.

import fs from 'node:fs';
import { AdapterSet } from '../adapters/inject.ts';
import type { StoredTensor } from '../adapters/types.ts';
import { hookFeeds, loadHookState, runFitHook, runStepHook, saveHookState } from '../adapters/hooks.ts';
import type { EncoderModel } from '../models/types.ts';
import { AdamW, AdamWGroup } from '../optim/adamw.ts';
import { clipGradNorm } from '../optim/clip.ts';
import { linearWarmupDecay } from '../optim/schedules.ts';
import { CompiledGraph, HostTensor } from '../runtime/session.ts';
import { Rng } from '../util/rng.ts';
import { Batch, makeBatches } from '../data/batching.ts';
import { loadLatestCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { MetricsLog } from './metrics.ts';
import { buildClassifierGraph, HEAD_B, HEAD_W, initHead } from './classifier.ts';
import { frozenWeightGradients } from './weight_grads.ts';

export interface EncodedExample {
  ids: number[];
  label: number;
}

export interface TrainOptions {
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
  /** Learning-rate multiplier for the classification head (it starts from scratch). */
  headLrScale?: number;
  /** Extra AdamW parameter groups, matched before the head's (e.g. LoRA+: loraPlusGroups(16)). */
  optimizerGroups?: AdamWGroup[];
  weightDecay?: number;
  warmupRatio?: number;
  maxGradNorm?: number;
  /** Stop after this many epochs without validation improvement. */
  patience?: number;
  buckets?: number[];
  threads?: number;
  /** Checkpoints and metrics go here (omit for an in-memory run). */
  outDir?: string;
  resume?: boolean;
  checkpointEvery?: number;
  /** Stop after this many optimizer steps in this process (used to simulate a crash in tests). */
  stopAfterSteps?: number;
  onStep?: (info: StepInfo) => void;
  onEpoch?: (info: EpochInfo) => void;
}

export interface StepInfo { step: number; totalSteps: number; epoch: number; loss: number; lr: number; tokensPerSec: number }
export interface EpochInfo { epoch: number; valAccuracy: number; valLoss: number; improved: boolean }

export class NonFiniteLossError extends Error {
  constructor(step: number, loss: number) {
    super(
      `Training diverged: loss is ${loss} at step ${step}. ` +
        'Lower the learning rate (--lr), enable gradient clipping, or check the data for empty texts / invalid labels. ' +
        'Resume from the last checkpoint with --resume after changing it.',
    );
    this.name = 'NonFiniteLossError';
  }
}

export interface EvalResult { accuracy: number; loss: number; predictions: number[] }

export class ClassificationTrainer {
  readonly head: Map<string, Float32Array>;
  private trainGraph?: CompiledGraph;
  private evalGraph?: CompiledGraph;

  constructor(
    readonly model: EncoderModel,
    readonly adapters: AdapterSet | null,
    readonly numLabels: number,
    readonly opts: TrainOptions,
  ) {
    if (!Number.isFinite(opts.lr) || opts.lr <= 0) throw new Error(`Learning rate must be a positive finite number, got ${opts.lr}`);
    if (!(opts.batchSize >= 1)) throw new Error(`Batch size must be ≥ 1, got ${opts.batchSize}`);
    this.head = initHead(model.hiddenSize, numLabels, opts.seed);
  }

  /** All trainable parameters (adapter + head), by name. */
  params(): Map<string, Float32Array> {
    return new Map([...(this.adapters?.params ?? []), ...this.head]);
  }

  private async compile(mode: 'train' | 'eval'): Promise<CompiledGraph> {
    const { graph } = buildClassifierGraph(this.model, this.adapters, this.head, this.numLabels, mode);
    return CompiledGraph.compile(graph, { threads: this.opts.threads });
  }

  private feeds(batch: Batch, withLabels: boolean, step = 0): Record<string, HostTensor> {
    const f: Record<string, HostTensor> = {
      input_ids: { data: batch.ids, dims: [batch.B, batch.T] },
      attention_mask: { data: batch.mask, dims: [batch.B, batch.T] },
    };
    if (withLabels) f.labels = { data: batch.labels, dims: [batch.B] };
    for (const [k, v] of this.params()) f[k] = { data: v, dims: this.shapeOf(k) };
    Object.assign(f, hookFeeds(this.adapters, withLabels));
    const p = this.adapters?.dropout ?? 0;
    if (withLabels && p > 0) {
      const rng = new Rng(this.opts.seed).fork(`dropout-${step}`);
      for (const site of this.adapters!.dropoutTargets) {
        const n = batch.B * batch.T * site.inFeatures;
        const m = new Float32Array(n);
        for (let i = 0; i < n; i++) m[i] = rng.uniform() < p ? 0 : 1 / (1 - p);
        f[AdapterSet.dropoutInput(site.name)] = { data: m, dims: [batch.B * batch.T, site.inFeatures] };
      }
    }
    return f;
  }

  private shapeOf(name: string): number[] {
    if (name === HEAD_W) return [this.numLabels, this.model.hiddenSize];
    if (name === HEAD_B) return [this.numLabels];
    return this.adapters!.shapes.get(name)!;
  }

  /** Length-bucketed batches; the order of epoch e depends only on (seed, e), so a resumed run sees the same batches. */
  private batches(data: EncodedExample[], epoch: number, shuffle: boolean): Batch[] {
    const buckets = this.opts.buckets ?? [32, 64, 128];
    return makeBatches(
      data.map((d) => d.ids),
      data.map((d) => d.label),
      { batchSize: this.opts.batchSize, buckets, padId: 0, rng: shuffle ? new Rng(this.opts.seed).fork(`epoch-${epoch}`) : undefined },
    );
  }

  async evaluate(data: EncodedExample[]): Promise<EvalResult> {
    this.evalGraph ??= await this.compile('eval');
    let correct = 0, lossSum = 0;
    const predictions = new Array<number>(data.length);
    for (const batch of this.batches(data, 0, false)) {
      const out = await this.evalGraph.run(this.feeds(batch, false));
      const logits = out.logits.data as Float32Array;
      for (let i = 0; i < batch.B; i++) {
        const row = logits.subarray(i * this.numLabels, (i + 1) * this.numLabels);
        let best = 0, max = -Infinity;
        for (let c = 0; c < this.numLabels; c++) if (row[c] > max) { max = row[c]; best = c; }
        let z = 0;
        for (let c = 0; c < this.numLabels; c++) z += Math.exp(row[c] - max);
        const label = Number(batch.labels[i]);
        lossSum += -(row[label] - max - Math.log(z));
        if (best === label) correct++;
        predictions[batch.index[i]] = best;
      }
    }
    return { accuracy: correct / Math.max(1, data.length), loss: lossSum / Math.max(1, data.length), predictions };
  }

  /** Pooled encoder outputs [N, hidden] in the order of `data`. */
  async embed(data: EncodedExample[], onBatch?: (n: number) => void): Promise<Float32Array> {
    this.evalGraph ??= await this.compile('eval');
    const h = this.model.hiddenSize;
    const out = new Float32Array(data.length * h);
    for (const batch of this.batches(data, 0, false)) {
      const pooled = (await this.evalGraph.run(this.feeds(batch, false), ['pooled'])).pooled.data as Float32Array;
      for (let i = 0; i < batch.B; i++) out.set(pooled.subarray(i * h, (i + 1) * h), batch.index[i] * h);
      onBatch?.(batch.B);
    }
    return out;
  }

  async fit(train: EncodedExample[], validation: EncodedExample[]) {
    const o = this.opts;
    const params = this.params();
    const stepsPerEpoch = Math.ceil(train.length / o.batchSize);
    const totalSteps = stepsPerEpoch * o.epochs;
    const schedule = linearWarmupDecay({ warmupSteps: Math.round((o.warmupRatio ?? 0.06) * totalSteps), totalSteps });
    const optimizer = new AdamW(params, {
      lr: o.lr,
      weightDecay: o.weightDecay ?? 0.01,
      groups: [...(o.optimizerGroups ?? []), { match: [HEAD_W, HEAD_B], lrScale: o.headLrScale ?? 1 }],
    });
    if (o.outDir && !o.resume) {
      // A fresh run owns its folder: an earlier run's checkpoints (possibly at
      // later steps) would otherwise be what a later --resume picks up, and its
      // metrics would be mixed into this run's log.
      fs.rmSync(`${o.outDir}/checkpoints`, { recursive: true, force: true });
      fs.rmSync(`${o.outDir}/metrics.jsonl`, { force: true });
    }
    const log = o.outDir ? new MetricsLog(`${o.outDir}/metrics.jsonl`) : null;
    let state = { step: 0, epoch: 0, batchInEpoch: 0, bestVal: -Infinity, badEpochs: 0, best: null as Map<string, Float32Array> | null, history: [] as EpochInfo[] };

    if (o.resume && o.outDir) {
      const ck = await loadLatestCheckpoint(`${o.outDir}/checkpoints`);
      if (ck) {
        for (const [k, v] of ck.params) {
          if (!params.has(k)) throw new Error(`Checkpoint has parameter '${k}' that this run does not: was it made with other options?`);
          params.get(k)!.set(v);
        }
        optimizer.loadStateDict(ck.optimizer as any);
        const { hookState, ...t } = ck.trainer as any;
        // Non-trainable hook state (SMoRA's β) continues where it was, not from its initial value.
        if (this.adapters && hookState) loadHookState(this.adapters, Object.entries(hookState as Record<string, Record<string, StoredTensor>>));
        state = { ...state, ...t, best: ck.best ?? null };
        log?.write({ event: 'resume', step: state.step, epoch: state.epoch });
      }
    }

    if (state.step === 0) {
      await runFitHook(this.adapters, {
        params, seed: o.seed,
        weightGradients: (sites, w) => frozenWeightGradients(this.model, sites, this.head, this.numLabels, train, { ...w, seed: o.seed, threads: o.threads }),
      });
    }
    this.trainGraph ??= await this.compile('train');
    let stepsThisRun = 0;
    const save = async () => {
      if (!o.outDir) return;
      const { best, ...trainer } = state;
      const hookState = this.adapters ? Object.fromEntries(saveHookState(this.adapters)) : {};
      await saveCheckpoint(`${o.outDir}/checkpoints`, { step: state.step, params, optimizer: optimizer.stateDict(), trainer: { ...trainer, hookState }, best: best ?? undefined });
    };

    for (; state.epoch < o.epochs; state.epoch++, state.batchInEpoch = 0) {
      const batches = this.batches(train, state.epoch, true);
      for (; state.batchInEpoch < batches.length; state.batchInEpoch++) {
        if (o.stopAfterSteps !== undefined && stepsThisRun >= o.stopAfterSteps) return { stopped: true, history: state.history };
        const batch = batches[state.batchInEpoch];
        const t0 = performance.now();
        const out = await this.trainGraph.run(this.feeds(batch, true, state.step));
        const loss = Number(out.loss.data[0]);
        if (!Number.isFinite(loss)) throw new NonFiniteLossError(state.step, loss);
        const grads = new Map<string, Float32Array>();
        for (const k of params.keys()) grads.set(k, out[`grad.${k}`].data as Float32Array);
        if (o.maxGradNorm) clipGradNorm(grads, o.maxGradNorm, { errorIfNonfinite: true });
        const lr = o.lr * schedule(state.step);
        const hookCtx = { step: state.step, totalSteps, lr, params, grads, outputs: out };
        runStepHook('beforeStep', this.adapters, hookCtx);
        optimizer.step(grads, lr);
        runStepHook('afterStep', this.adapters, { ...hookCtx, step: state.step + 1 });
        state.step++;
        stepsThisRun++;
        const dt = (performance.now() - t0) / 1000;
        const info = { step: state.step, totalSteps, epoch: state.epoch, loss, lr, tokensPerSec: (batch.B * batch.T) / dt };
        o.onStep?.(info);
        log?.write({ event: 'step', ...info });
        if (o.checkpointEvery && state.step % o.checkpointEvery === 0) {
          state.batchInEpoch++;
          await save();
          state.batchInEpoch--;
        }
      }
      const val = await this.evaluate(validation);
      const improved = val.accuracy > state.bestVal;
      if (improved) {
        state.bestVal = val.accuracy;
        state.badEpochs = 0;
        state.best = new Map([...params].map(([k, v]) => [k, Float32Array.from(v)]));
      } else state.badEpochs++;
      const info = { epoch: state.epoch, valAccuracy: val.accuracy, valLoss: val.loss, improved };
      state.history.push(info);
      o.onEpoch?.(info);
      log?.write({ event: 'epoch', ...info });
      const stop = o.patience !== undefined && state.badEpochs >= o.patience;
      state.epoch++;
      state.batchInEpoch = 0;
      await save();
      state.epoch--;
      if (stop) break;
    }
    // Early stopping keeps the best validation weights.
    if (state.best) for (const [k, v] of state.best) params.get(k)!.set(v);
    return { stopped: false, history: state.history, bestValAccuracy: state.bestVal };
  }

  async release() {
    await this.trainGraph?.release();
    await this.evalGraph?.release();
  }
}
