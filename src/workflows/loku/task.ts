// Knowledge unlearning as a task of the one loop (src/train/loop.ts), as the
// official LoKU code trains it (TOFU/data_module.py TextForgetDatasetQA,
// dataloader.py CustomTrainerForgetting): an epoch is one pass over the
// forget set; each forget example is paired with a retain example drawn at
// random ((idx + randint(|retain|)) mod |retain|, fresh every epoch from the
// seed), and the loss of a batch of pairs is
//
//   'ihl'  IHL(forget) + NLL(retain)          LoKU's inverted hinge loss
//   'gd'   −NLL(forget) + NLL(retain)         gradient difference ('grad_diff')
//   'ga'   −NLL(forget)                       gradient ascent ('grad_ascent'; no retain term)
//
// NLL is the causal-LM mean over the batch's counted tokens (Hugging Face's
// loss). The forget and retain rows run as one padded batch through one
// forward pass: the same values as the official two calls.

import type { Graph } from '../../graph/ir.ts';
import type { DecoderModel } from '../../models/decoder.ts';
import type { LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../../train/task.ts';
import { causalLmLoss, makeCausalLmBatch, shiftLabels, type CausalLmExample, type CausalLmTaskBatch } from '../../train/tasks/causal_lm.ts';
import type { Rng } from '../../util/rng.ts';
import * as op from '../../graph/ops.ts';
import { invertedHingeLoss } from './ihl.ts';

export type UnlearnLoss = 'ihl' | 'gd' | 'ga';
export const UNLEARN_LOSSES: readonly UnlearnLoss[] = ['ihl', 'gd', 'ga'];

/** A batch in the order given (no length sorting), with its count of predicted tokens. */
export function lmBatch(examples: CausalLmExample[], padId: number): CausalLmTaskBatch {
  const b = makeCausalLmBatch(examples, padId);
  let targets = 0;
  for (let r = 0; r < b.B; r++) for (let t = 1; t < b.T; t++) if (b.labels[r * b.T + t] >= 0n) targets++;
  return { ...b, targets };
}

export interface UnlearnBatch {
  /** Forget rows first, then (except for 'ga') as many retain rows. */
  rows: CausalLmTaskBatch;
  forget: number;
  tokens: number;
}

export class UnlearnTask implements TrainTask<CausalLmExample, UnlearnBatch> {
  readonly kind = 'causal-lm';
  readonly peftTaskType = 'CAUSAL_LM';
  readonly metric = { name: 'loss', higherIsBetter: false };
  readonly params = new Map<string, TrainTensor>();
  readonly name: string;

  /**
   * `retain`: the retain set the forget examples (the loop's training data) are paired with.
   */
  constructor(readonly model: DecoderModel, readonly retain: readonly CausalLmExample[], readonly o: { loss: UnlearnLoss; padId: number }) {
    this.name = `${model.name}-unlearn-${o.loss}`;
    if (o.loss !== 'ga' && !retain.length) throw new Error(`unlearning with the ${o.loss} loss needs retain examples`);
  }

  get weights() {
    return this.model.weights;
  }

  build(g: Graph, linear: LinearFn): TaskGraph {
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
    const forgetTargets = g.input('forget_targets', 'int64', ['B', 'T']);
    const { logits } = this.model.build(g, { inputIds, attentionMask }, linear);
    if (this.o.loss === 'ga') return { loss: op.neg(causalLmLoss(logits, forgetTargets)) };
    const retainTargets = g.input('retain_targets', 'int64', ['B', 'T']);
    const forget = this.o.loss === 'ihl' ? invertedHingeLoss(logits, forgetTargets) : op.neg(causalLmLoss(logits, forgetTargets));
    return { loss: op.add(forget, causalLmLoss(logits, retainTargets)) };
  }

  /** An epoch's batches: forget examples in the rng's order (data order without), each with its drawn retain partner. */
  batches(data: readonly CausalLmExample[], batchSize: number, rng: Rng | null): UnlearnBatch[] {
    const order = rng ? rng.fork('forget-order').permutation(data.length) : data.map((_, i) => i);
    const draw = rng?.fork('retain-draw');
    const out: UnlearnBatch[] = [];
    for (let s = 0; s < order.length; s += batchSize) {
      const idx = order.slice(s, s + batchSize);
      const forget = idx.map((i) => data[i]);
      // TextForgetDatasetQA: retain index = (idx + randint(0, |retain|)) % |retain|.
      const retain = this.o.loss === 'ga' ? [] : idx.map((i) => this.retain[(i + (draw ? draw.int(this.retain.length) : 0)) % this.retain.length]);
      const rows = lmBatch([...forget, ...retain], this.o.padId);
      out.push({ rows, forget: forget.length, tokens: rows.B * rows.T });
    }
    return out;
  }

  feeds(b: UnlearnBatch): Record<string, HostTensor> {
    const { rows } = b;
    const shifted = shiftLabels(rows.labels, rows.B, rows.T);
    const forget = BigInt64Array.from(shifted), retain = BigInt64Array.from(shifted);
    forget.fill(-100n, b.forget * rows.T);
    retain.fill(-100n, 0, b.forget * rows.T);
    const f: Record<string, HostTensor> = {
      input_ids: { data: rows.ids, dims: [rows.B, rows.T] },
      attention_mask: { data: rows.mask, dims: [rows.B, rows.T] },
      forget_targets: { data: forget, dims: [rows.B, rows.T] },
    };
    if (this.o.loss !== 'ga') f.retain_targets = { data: retain, dims: [rows.B, rows.T] };
    return f;
  }

  tokens(b: UnlearnBatch): number {
    return b.tokens;
  }

  evaluate(results: { batch: UnlearnBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    let sum = 0;
    for (const { out } of results) sum += Number(out.loss.data[0]);
    return { loss: results.length ? sum / results.length : NaN };
  }
}
