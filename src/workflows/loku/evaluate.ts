// How much of a set of facts a decoder knows (the unlearning table's
// columns): over the answer tokens of each example (the completion; the
// prompt is not scored), teacher-forced,
//   nll            mean negative log-likelihood per answer token
//   probability    mean over examples of exp(−their mean NLL) (TOFU's length-normalized answer probability)
//   token_accuracy fraction of answer tokens that are the argmax next token
//   exact_match    fraction of examples whose every answer token is the argmax
//                  (= greedy decoding from the prompt reproduces the answer)

import { adapterFeeds } from '../../adapters/feeds.ts';
import type { AdapterSet } from '../../adapters/inject.ts';
import { Graph } from '../../graph/ir.ts';
import * as op from '../../graph/ops.ts';
import type { DecoderModel } from '../../models/decoder.ts';
import { plainLinear } from '../../models/linear.ts';
import { CompiledGraph } from '../../runtime/session.ts';
import { shiftLabels, type CausalLmExample } from '../../train/tasks/causal_lm.ts';
import { lmBatch } from './task.ts';

export interface KnowledgeMetrics {
  nll: number;
  probability: number;
  token_accuracy: number;
  exact_match: number;
  examples: number;
  tokens: number;
}

export async function knowledgeMetrics(model: DecoderModel, adapters: AdapterSet | null, examples: readonly CausalLmExample[], o: { padId: number; batchSize?: number; threads?: number }): Promise<KnowledgeMetrics> {
  const g = new Graph(`${model.name}-knowledge`);
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  const targets = g.input('targets', 'int64', ['B', 'T']);
  const { logits } = model.build(g, { inputIds, attentionMask }, adapters ? adapters.linear({ training: false }) : plainLinear);
  const V = model.config.vocabSize;
  const x = op.reshape(logits, [-1, V]);
  const t = op.where(op.greater(op.reshape(targets, [-1, 1]), -1), op.reshape(targets, [-1, 1]), 0);
  g.output('logprob', op.gatherElements(op.logSoftmax(x, -1), t, 1));
  g.output('correct', op.add(op.neg(op.cast(op.less(op.gatherElements(x, t, 1), op.reduceMax(x, [1], true)), 'float32')), 1));
  const cg = await CompiledGraph.compile(g, { threads: o.threads });
  const bs = o.batchSize ?? 16;
  let nll = 0, tokens = 0, correct = 0, exact = 0, prob = 0, n = 0;
  try {
    for (let s = 0; s < examples.length; s += bs) {
      const chunk = examples.slice(s, s + bs);
      const b = lmBatch(chunk, o.padId);
      const shifted = shiftLabels(b.labels, b.B, b.T);
      const out = await cg.run({
        input_ids: { data: b.ids, dims: [b.B, b.T] },
        attention_mask: { data: b.mask, dims: [b.B, b.T] },
        targets: { data: shifted, dims: [b.B, b.T] },
        ...adapterFeeds(adapters, { training: false }),
      });
      const lp = out.logprob.data as Float32Array, ok = out.correct.data as Float32Array;
      for (let r = 0; r < b.B; r++) {
        let rowNll = 0, rowTok = 0, rowOk = 0;
        for (let q = 0; q < b.T; q++) {
          if (shifted[r * b.T + q] < 0n) continue;
          rowNll -= lp[r * b.T + q];
          rowOk += ok[r * b.T + q];
          rowTok++;
        }
        if (!rowTok) continue;
        nll += rowNll;
        tokens += rowTok;
        correct += rowOk;
        exact += rowOk === rowTok ? 1 : 0;
        prob += Math.exp(-rowNll / rowTok);
        n++;
      }
    }
  } finally {
    await cg.release();
  }
  return { nll: nll / tokens, probability: prob / n, token_accuracy: correct / tokens, exact_match: exact / n, examples: n, tokens };
}
