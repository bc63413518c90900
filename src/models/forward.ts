// The plain forward pass of any model family with a given LinearFn (the
// frozen base, or a base with an adapter): what serving and export build on.

import { Graph, Value } from '../graph/ir.ts';
import type { DecoderModel } from './decoder.ts';
import type { Seq2SeqModel } from './seq2seq.ts';
import type { EncoderModel, LinearFn } from './types.ts';

/** Every model family lorakit runs: sentence encoders, decoder LMs and encoder-decoders. */
export type ServableModel = EncoderModel | DecoderModel | Seq2SeqModel;
export type ModelKind = 'encoder' | 'decoder' | 'seq2seq';

export function modelKind(m: EncoderModel | DecoderModel | Seq2SeqModel): ModelKind {
  if ('decode' in m && typeof m.decode === 'function') return 'seq2seq';
  return 'hiddenSize' in m ? 'encoder' : 'decoder';
}

/**
 * Forward graph of a model with the given LinearFn: inputs input_ids /
 * attention_mask (and decoder_input_ids [B, T'] for an encoder-decoder), output
 * 'output' (pooled [B, width] or LM logits [B, T, V]).
 */
export function buildForwardGraph(model: ServableModel, linear: LinearFn, name = `${model.name}-forward`): { graph: Graph; inputIds: Value; attentionMask: Value } {
  const g = new Graph(name);
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  const kind = modelKind(model);
  if (kind === 'seq2seq') g.output('output', seq2seqLogits(model as Seq2SeqModel, g, inputIds, attentionMask, g.input('decoder_input_ids', 'int64', ['B', 'T_dec']), linear));
  else g.output('output', kind === 'decoder' ? (model as DecoderModel).build(g, { inputIds, attentionMask }, linear).logits : (model as EncoderModel).build(g, { inputIds, attentionMask }, linear));
  return { graph: g, inputIds, attentionMask };
}

/** Teacher-forced seq2seq logits [B, T, V]: encode, cross-attention keys/values, decode. */
export function seq2seqLogits(model: Seq2SeqModel, g: Graph, inputIds: Value, attentionMask: Value, decoderInputIds: Value, linear: LinearFn): Value {
  const cross = model.crossKv(g, model.encode(g, { inputIds, attentionMask }, linear), linear);
  return model.decode(g, { decoderInputIds, encoderAttentionMask: attentionMask, cross }, linear).logits;
}

