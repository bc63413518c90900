// Extractive summaries: rank a document's units (sentences or lines) by
// LexRank salience (or keep the lead), then pick k of them in document order.

import { bowSimilarity, IdfTable, lexRankScores, lexTokens, tfidfSimilarity, topK, salienceOrder, type LexRankOptions, type Similarity } from './lexrank.ts';
import type { SentenceEmbedder } from './embed_similarity.ts';

export type SimilarityKind = 'tfidf' | 'bow' | 'embedding';

export interface RankOptions extends LexRankOptions {
  /** 'tfidf' (default, Erkan & Radev's idf-modified cosine), 'bow' (term counts, stopwords removed), 'embedding' (encoder cosine). */
  similarity?: SimilarityKind;
  /** idf collection for 'tfidf' (default: the document's own units). */
  idf?: IdfTable;
  /** Words 'bow' leaves out. */
  stopwords?: ReadonlySet<string>;
  /** The encoder for 'embedding'. */
  embedder?: SentenceEmbedder;
}

export async function similarityOf(units: string[], o: RankOptions): Promise<Similarity> {
  const kind = o.similarity ?? 'tfidf';
  if (kind === 'embedding') {
    if (!o.embedder) throw new Error("similarity 'embedding' needs an encoder (SentenceEmbedder.load('use'))");
    return o.embedder.similarity(units);
  }
  const toks = units.map(lexTokens);
  return kind === 'bow' ? bowSimilarity(toks, o.stopwords) : tfidfSimilarity(toks, o.idf);
}

/** LexRank salience of each unit (sums to 1). */
export async function rankUnits(units: string[], o: RankOptions = {}): Promise<Float64Array> {
  return lexRankScores(await similarityOf(units, o), o);
}

export interface Extract {
  /** Chosen unit indices in document order. */
  indices: number[];
  /** The chosen units joined by newlines (ROUGE-Lsum reads newlines as sentence ends). */
  summary: string;
  /** Every unit's salience (LexRank only). */
  scores?: number[];
}

/** The k most salient units (LexRank) or the first k ('lead'). */
export async function extractSummary(units: string[], k: number, method: 'lexrank' | 'lead', o: RankOptions = {}): Promise<Extract> {
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`the number of sentences must be a positive integer, got ${k}`);
  if (method === 'lead') {
    const indices = units.slice(0, k).map((_, i) => i);
    return { indices, summary: indices.map((i) => units[i]).join('\n') };
  }
  const scores = await rankUnits(units, o);
  const indices = topK(scores, k);
  return { indices, summary: indices.map((i) => units[i]).join('\n'), scores: [...scores] };
}

export { salienceOrder };
