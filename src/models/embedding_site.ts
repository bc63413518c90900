// Token-embedding tables as adapter sites (PEFT adapts nn.Embedding modules
// such as `embed_tokens`, `word_embeddings`, `wte`): the site, and the lookup
// model builders call so that an adapter's LinearFn can add its own term.

import type { Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { LinearFn, LinearSite } from './types.ts';

/** The site of an embedding table [vocab, dim] stored under `weightKey`. */
export function embeddingSite(name: string, vocab: number, dim: number, weightKey = `${name}.weight`, paddingIdx?: number): LinearSite {
  return { name, inFeatures: vocab, outFeatures: dim, weightKey, layout: 'in_out', kind: 'embedding', ...(paddingIdx === undefined ? {} : { paddingIdx }) };
}

export function isEmbedding(site: LinearSite): boolean {
  return site.kind === 'embedding';
}

/** table[ids] through the callback's `embed` hook where it has one; [...ids.shape, dim]. */
export function embedTokens(linear: LinearFn, site: LinearSite, ids: Value, table: Value): Value {
  return linear.embed ? linear.embed(site, ids, table) : op.gather(table, ids);
}
