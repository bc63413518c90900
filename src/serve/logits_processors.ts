// The logits processors of Hugging Face generation that summarization uses,
// applied to one row of scores (logits for greedy/sampling, log-probabilities
// for beam search) given the row's decoder tokens so far (decoder start token
// included, as HF's input_ids are):
//   no_repeat_ngram_size   ban a token that would repeat an n-gram of the row
//   min_length             ban the end tokens while the row is shorter than min_length
//   forced_bos_token_id    only this token right after the decoder start token (BART's <s>)
//   forced_eos_token_id    only this token at the last position max_length allows
// Lengths are HF's: the whole decoder sequence, start token included.

export interface ProcessorOptions {
  noRepeatNgramSize?: number;
  minLength?: number;
  /** HF max_length (needed for forcedEosTokenId). */
  maxLength?: number;
  forcedBosTokenId?: number;
  forcedEosTokenId?: number;
  /** The end tokens min_length holds back. */
  eosTokenIds: number[];
}

/** Tokens that would complete an n-gram already in `tokens` (NoRepeatNGramLogitsProcessor). */
export function bannedNgramTokens(tokens: number[], n: number): number[] {
  const len = tokens.length;
  if (n <= 0 || len + 1 < n) return [];
  const banned: number[] = [];
  // The n−1 tokens the next one would extend.
  const start = len + 1 - n;
  for (let j = 0; j + n <= len; j++) {
    let same = true;
    for (let k = 0; k < n - 1 && same; k++) same = tokens[j + k] === tokens[start + k];
    if (same) banned.push(tokens[j + n - 1]);
  }
  return banned;
}

/** Applies the processors to `scores` (one row of the vocabulary) in place. */
export function processScores(scores: Float32Array | Float64Array, tokens: number[], o: ProcessorOptions): void {
  const curLen = tokens.length;
  if (o.noRepeatNgramSize && o.noRepeatNgramSize > 0) for (const t of bannedNgramTokens(tokens, o.noRepeatNgramSize)) scores[t] = -Infinity;
  if (o.minLength !== undefined && curLen < o.minLength) for (const e of o.eosTokenIds) scores[e] = -Infinity;
  const force = (t: number) => {
    scores.fill(-Infinity);
    scores[t] = 0;
  };
  if (o.forcedBosTokenId !== undefined && curLen === 1) force(o.forcedBosTokenId);
  if (o.forcedEosTokenId !== undefined && o.maxLength !== undefined && curLen === o.maxLength - 1) force(o.forcedEosTokenId);
}

/** True when any processor is set (greedy decoding can skip the copy otherwise). */
export function hasProcessors(o: Partial<ProcessorOptions>): boolean {
  return !!(o.noRepeatNgramSize || o.minLength || o.forcedBosTokenId !== undefined || o.forcedEosTokenId !== undefined);
}
