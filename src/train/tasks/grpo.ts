// GRPO as a task of the one loop (src/train/loop.ts): a batch is `batchSize`
// prompts; before its step (`prepare`) the policy (the model with the adapter
// being trained, unmerged so every update is seen) samples G completions per
// prompt with the generator's KV cache, the reward function scores them and
// the advantages are normalized within each prompt's group
// (src/train/grpo/advantages.ts). The step's graph then recomputes the
// completions' per-token log-probs with the adapter (gradient) and without it
// (the reference: the same weights with the adapter disabled, in the same
// graph, so no second model is held) and minimizes the GRPO loss
// (src/train/grpo/loss.ts).
//
// One optimizer step per sampled batch (TRL's num_iterations = 1): the old
// policy's log-probs are the current ones detached, so the ratio is 1; the
// clipping is kept in the loss for μ > 1. Log-probs are taken of logits / T,
// the distribution the completions were sampled from (as TRL does).
//
// Sampling is seeded statelessly: completion i of prompt j at step s uses the
// generator seed drawn from fork(`grpo-sample-s-j-i`) of the run's seed, so
// the checkpoint's step is the whole sampling RNG state and a resumed run
// samples what the uninterrupted one would have.

import type { Graph, Value } from '../../graph/ir.ts';
import * as op from '../../graph/ops.ts';
import type { AdapterSet } from '../../adapters/inject.ts';
import type { DecoderModel } from '../../models/decoder.ts';
import { plainLinear } from '../../models/linear.ts';
import type { LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import { Generator } from '../../serve/generate.ts';
import { Rng } from '../../util/rng.ts';
import { groupAdvantages } from '../grpo/advantages.ts';
import { grpoLoss, type GrpoLossOptions } from '../grpo/loss.ts';
import type { PrepareContext, TaskGraph, TrainTask, TrainTensor } from '../task.ts';

/** One prompt: its token ids and its record (what the reward reads: labels, the relevant document...). */
export interface GrpoPrompt {
  ids: number[];
  record: Record<string, unknown>;
}

/** A completion's reward (finite; Rank-R1's is 0 or 1). */
export type RewardFn = (completion: string, record: Record<string, unknown>) => number;

export interface GrpoOptions extends GrpoLossOptions {
  /** Completions per prompt G (≥ 2; Rank-R1 used 8). */
  numGenerations: number;
  /** Sampling temperature (default 1). */
  temperature?: number;
  /** Longest completion (tokens). */
  maxNewTokens: number;
  padId: number;
  /** Token ids → text for the reward. */
  decode: (ids: number[]) => string;
  reward: RewardFn;
  /** onnxruntime threads of the sampler. */
  threads?: number;
}

interface Sampled {
  ids: BigInt64Array;
  mask: Float32Array;
  targets: BigInt64Array;
  advantages: Float32Array;
  rewards: number[];
  completionTokens: number;
  T: number;
}

export interface GrpoBatch {
  prompts: GrpoPrompt[];
  /** Filled by `prepare` before the step. */
  sampled?: Sampled;
}

export class GrpoTask implements TrainTask<GrpoPrompt, GrpoBatch> {
  readonly kind = 'grpo';
  readonly peftTaskType = 'CAUSAL_LM';
  readonly metric = { name: 'reward', higherIsBetter: true };
  readonly params = new Map<string, TrainTensor>();
  readonly name: string;
  private sampler?: { gen: Generator; adapters: AdapterSet | null };

  constructor(readonly model: DecoderModel, readonly o: GrpoOptions) {
    if (!(Number.isInteger(o.numGenerations) && o.numGenerations >= 2)) throw new Error(`GRPO: --num-generations must be an integer ≥ 2 (the advantage compares completions of one prompt), got ${o.numGenerations}`);
    if (!(Number.isInteger(o.maxNewTokens) && o.maxNewTokens >= 1)) throw new Error(`GRPO: --max-new-tokens must be an integer ≥ 1, got ${o.maxNewTokens}`);
    if (!((o.temperature ?? 1) > 0)) throw new Error(`GRPO: the temperature must be > 0, got ${o.temperature}`);
    this.name = `${model.name}-grpo`;
  }

  get weights() {
    return this.model.weights;
  }

  /** Per-token log-probs [B,T] of `targets` (shifted completion tokens, −1 elsewhere) under logits / temperature. */
  private tokenLogProbs(g: Graph, linear: LinearFn, inputIds: Value, attentionMask: Value, targets: Value): { logp: Value; mask: Value } {
    const { logits } = this.model.build(g, { inputIds, attentionMask }, linear);
    const temp = this.o.temperature ?? 1;
    const lp = op.logSoftmax(temp === 1 ? logits : op.div(logits, temp), -1); // [B,T,V]
    const keep = op.greater(targets, -1);
    const picked = op.gatherElements(lp, op.unsqueeze(op.where(keep, targets, 0), [2]), 2); // [B,T,1]
    return { logp: op.squeeze(picked, [2]), mask: op.cast(keep, 'float32') };
  }

  build(g: Graph, linear: LinearFn): TaskGraph {
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
    const targets = g.input('targets', 'int64', ['B', 'T']);
    const advantages = g.input('advantages', 'float32', ['B']);
    const { logp, mask } = this.tokenLogProbs(g, linear, inputIds, attentionMask, targets);
    const beta = this.o.beta ?? 0;
    // The reference policy: the same frozen weights through the plain projections (adapter disabled), no gradient.
    const ref = beta > 0 ? op.stopGradient(this.tokenLogProbs(g, plainLinear, inputIds, attentionMask, targets).logp) : null;
    const { loss, kl } = grpoLoss(logp, op.stopGradient(logp), ref, mask, advantages, this.o);
    return { loss, outputs: kl ? { kl } : {} };
  }

  batches(data: readonly GrpoPrompt[], batchSize: number, rng: Rng | null): GrpoBatch[] {
    const order = data.map((_, i) => i);
    if (rng) rng.shuffle(order);
    const out: GrpoBatch[] = [];
    for (let s = 0; s < order.length; s += batchSize) out.push({ prompts: order.slice(s, s + batchSize).map((i) => data[i]) });
    return out;
  }

  /** Samples G completions per prompt with the current policy, scores them, and lays out the step's batch. */
  async prepare(batch: GrpoBatch, ctx: PrepareContext): Promise<void> {
    if (!ctx.adapters) throw new Error('GRPO trains an adapter (its reference policy is the model with the adapter disabled): leave out --full');
    if (this.sampler?.adapters !== ctx.adapters) {
      await this.sampler?.gen.release();
      this.sampler = { gen: new Generator(this.model, ctx.adapters, { threads: this.o.threads }, { merge: false }), adapters: ctx.adapters };
    }
    const G = this.o.numGenerations;
    const seqs: { ids: number[]; promptLength: number }[] = [];
    const rewards: number[] = [];
    const root = new Rng(ctx.seed);
    for (let j = 0; j < batch.prompts.length; j++) {
      const p = batch.prompts[j];
      for (let i = 0; i < G; i++) {
        const seed = root.fork(`grpo-sample-${ctx.step}-${j}-${i}`).nextUint32();
        const r = await this.sampler.gen.generate(p.ids, { doSample: true, temperature: this.o.temperature ?? 1, maxNewTokens: this.o.maxNewTokens, seed });
        const reward = this.o.reward(this.o.decode(r.tokens), p.record);
        if (!Number.isFinite(reward)) throw new Error(`GRPO: the reward function returned ${reward} for a completion of prompt ${j}; rewards must be finite numbers`);
        rewards.push(reward);
        seqs.push({ ids: [...p.ids, ...r.tokens], promptLength: p.ids.length });
      }
    }
    const B = seqs.length, T = Math.max(...seqs.map((s) => s.ids.length));
    const ids = new BigInt64Array(B * T).fill(BigInt(this.o.padId));
    const mask = new Float32Array(B * T);
    const targets = new BigInt64Array(B * T).fill(-1n);
    let completionTokens = 0;
    seqs.forEach((s, b) => {
      s.ids.forEach((id, t) => {
        ids[b * T + t] = BigInt(id);
        mask[b * T + t] = 1;
        // Position t predicts token t+1: a completion token's log-prob sits at the position before it.
        if (t + 1 < s.ids.length && t + 1 >= s.promptLength) {
          targets[b * T + t] = BigInt(s.ids[t + 1]);
          completionTokens++;
        }
      });
    });
    batch.sampled = { ids, mask, targets, advantages: groupAdvantages(rewards, G), rewards, completionTokens, T };
  }

  feeds(b: GrpoBatch): Record<string, HostTensor> {
    const s = b.sampled;
    if (!s) throw new Error('GRPO: a batch is fed before its completions were sampled (prepare)');
    const B = s.advantages.length;
    return {
      input_ids: { data: s.ids, dims: [B, s.T] },
      attention_mask: { data: s.mask, dims: [B, s.T] },
      targets: { data: s.targets, dims: [B, s.T] },
      advantages: { data: s.advantages, dims: [B] },
    };
  }

  tokens(b: GrpoBatch): number {
    return b.sampled?.completionTokens ?? 0;
  }

  /** The step's figures: mean reward of its completions and the share of prompts whose group taught something. */
  stepMetrics(b: GrpoBatch, out: Record<string, HostTensor>): Record<string, number> {
    const s = b.sampled!;
    const G = this.o.numGenerations;
    let informative = 0;
    for (let k = 0; k < s.rewards.length; k += G) if (s.rewards.slice(k, k + G).some((r) => r !== s.rewards[k])) informative++;
    return {
      reward: s.rewards.reduce((a, r) => a + r, 0) / s.rewards.length,
      groupsWithSignal: informative / (s.rewards.length / G),
      ...(out.kl && { kl: Number(out.kl.data[0]) }),
    };
  }

  evaluate(): Record<string, number> {
    throw new Error('GRPO has no validation pass: the mean reward of each step is in metrics.jsonl');
  }

  async release(): Promise<void> {
    await this.sampler?.gen.release();
    this.sampler = undefined;
  }
}
