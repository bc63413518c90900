// An encoder-decoder's logits graph built straight from the model's encode /
// crossKv / decode (not through PeftModel or the training graph), which the
// tests compare those paths and PyTorch against.
import { Graph } from '../../src/graph/ir.ts';
import type { Seq2SeqModel } from '../../src/models/seq2seq.ts';
import type { LinearFn } from '../../src/models/types.ts';

/** Inputs input_ids, attention_mask [B, S] and decoder_input_ids [B, T]; output logits [B, T, V]. */
export function seq2seqLogitsGraph(model: Seq2SeqModel, linear: LinearFn, name = 'seq2seq-logits'): Graph {
  const g = new Graph(name);
  const inputIds = g.input('input_ids', 'int64', ['B', 'S']), attentionMask = g.input('attention_mask', 'float32', ['B', 'S']);
  const decoderInputIds = g.input('decoder_input_ids', 'int64', ['B', 'T']);
  const cross = model.crossKv(g, model.encode(g, { inputIds, attentionMask }, linear), linear);
  g.output('logits', model.decode(g, { decoderInputIds, encoderAttentionMask: attentionMask, cross }, linear).logits);
  return g;
}
