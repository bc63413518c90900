// Beam search with Hugging Face transformers' semantics (v4.30
// generation/utils.py beam_search, beam_search.py BeamSearchScorer and
// BeamHypotheses), so a BART/T5 user gets the summaries HF's generate()
// would give with the same num_beams, length_penalty, early_stopping,
// no_repeat_ngram_size, min/max length and forced BOS/EOS:
//
// - each batch item keeps numBeams running beams; at the start only beam 0 is
//   live (the others score −1e9), so the first step expands one sequence;
// - a step scores log_softmax(logits) after the logits processors, plus the
//   beam's running sum, and takes the 2·numBeams best (beam, token) pairs of
//   the item: an end token among the first numBeams finishes a hypothesis
//   (without the end token; score = sum / length^length_penalty, length
//   counting the decoder start token), any other token continues a beam until
//   numBeams are filled;
// - an item is done when numBeams hypotheses are kept and (early_stopping
//   true) at once, (false) when no running beam can beat the worst kept one
//   at the current length, ('never') at max_length when length_penalty > 0;
// - the search ends when every item is done or the sequences reach maxLength;
//   open beams of unfinished items then count as hypotheses.
// Checked against a PyTorch transcription: tools/reference/beam_search_hf.py.

import { processScores, type ProcessorOptions } from './logits_processors.ts';

export interface BeamSearchOptions {
  numBeams: number;
  /** HF max_length: the whole decoder sequence, decoder start token included. */
  maxLength: number;
  /** HF min_length (start token included): end tokens are held back until then. */
  minLength?: number;
  /** Exponent on the length that divides a hypothesis' log-probability (default 1; > 0 favours longer). */
  lengthPenalty?: number;
  /** true: stop an item once numBeams hypotheses finished; false (default): HF's heuristic; 'never': exact. */
  earlyStopping?: boolean | 'never';
  noRepeatNgramSize?: number;
  /** Hypotheses returned per input (≤ numBeams, default 1). */
  numReturnSequences?: number;
  forcedBosTokenId?: number;
  forcedEosTokenId?: number;
  /** End tokens (the first is the one appended to a finished hypothesis). */
  eosTokenIds: number[];
  padTokenId: number;
  decoderStartTokenId: number;
}

export interface BeamHypothesis {
  /** Generated tokens (decoder start excluded), ending with eosTokenIds[0] when the hypothesis finished. */
  tokens: number[];
  /** Sum of log-probabilities / length^lengthPenalty (HF's sequence_scores). */
  score: number;
}

/**
 * One decoder step for all N = B·numBeams rows: `lastTokens[r]` is row r's
 * newest token; `reorder`, when given, says which previous row each row
 * continues (rows' caches must be gathered by it first). Returns logits [N, V].
 */
export type BeamStep = (lastTokens: number[], reorder: Int32Array | null) => Promise<Float32Array>;

class Hypotheses {
  readonly beams: { score: number; tokens: number[] }[] = [];
  private worst = 1e9;
  constructor(private readonly n: number, private readonly lp: number, private readonly early: boolean | 'never', private readonly maxLength: number) {}

  add(tokens: number[], sumLogprobs: number): void {
    const score = sumLogprobs / tokens.length ** this.lp;
    if (this.beams.length < this.n || score > this.worst) {
      this.beams.push({ score, tokens });
      if (this.beams.length > this.n) {
        // Drop the worst (the first of equal worst ones, as Python's sort of (score, index) does).
        const order = this.beams.map((b, i) => [b.score, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        this.beams.splice(order[0][1], 1);
        this.worst = order[1][0];
      } else this.worst = Math.min(score, this.worst);
    }
  }

  isDone(bestSumLogprobs: number, curLen: number): boolean {
    if (this.beams.length < this.n) return false;
    if (this.early === true) return true;
    const len = this.early === 'never' && this.lp > 0 ? this.maxLength : curLen;
    return this.worst >= bestSumLogprobs / len ** this.lp;
  }

  /** Best first; equal scores: the later added first (Python's stable sort, then pop from the end). */
  best(k: number): { score: number; tokens: number[] }[] {
    const sorted = this.beams.map((b, i) => ({ b, i })).sort((x, y) => x.b.score - y.b.score || x.i - y.i);
    return sorted.reverse().slice(0, k).map((x) => x.b);
  }
}

/** In-place log_softmax of one row (float64 for the sum). */
function logSoftmax(row: Float64Array): void {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > max) max = row[i];
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i] - max);
  const lz = max + Math.log(z);
  for (let i = 0; i < row.length; i++) row[i] -= lz;
}

/** The k largest of `scores` (one item's numBeams × V candidates), best first; ties: lower index first. */
function topCandidates(scores: Float64Array, k: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < scores.length; i++) {
    const x = scores[i];
    if (best.length === k && !(x > scores[best[k - 1]])) continue;
    let lo = 0, hi = best.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (scores[best[mid]] >= x) lo = mid + 1;
      else hi = mid;
    }
    best.splice(lo, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

export function checkBeamOptions(o: BeamSearchOptions): void {
  if (!(Number.isInteger(o.numBeams) && o.numBeams >= 1)) throw new Error(`num_beams must be a positive integer, got ${o.numBeams}`);
  const r = o.numReturnSequences ?? 1;
  if (!(Number.isInteger(r) && r >= 1 && r <= o.numBeams)) throw new Error(`num_return_sequences (${r}) must be between 1 and num_beams (${o.numBeams})`);
  if (!(Number.isInteger(o.maxLength) && o.maxLength >= 2)) throw new Error(`max_length must be an integer ≥ 2 (decoder start + one token), got ${o.maxLength}`);
  if (!o.eosTokenIds.length) throw new Error('beam search needs at least one end token (eos_token_id)');
}

/** Beam search over B inputs; returns numReturnSequences hypotheses per input, best first. */
export async function beamSearch(step: BeamStep, B: number, vocabSize: number, o: BeamSearchOptions): Promise<BeamHypothesis[][]> {
  checkBeamOptions(o);
  const K = o.numBeams, V = vocabSize, N = B * K, maxLen = o.maxLength;
  const eos = new Set(o.eosTokenIds);
  const proc: ProcessorOptions = { ...o, maxLength: maxLen };
  let seqs: number[][] = Array.from({ length: N }, () => [o.decoderStartTokenId]);
  let beamScores = Float64Array.from({ length: N }, (_, r) => (r % K === 0 ? 0 : -1e9));
  const hyps = Array.from({ length: B }, () => new Hypotheses(K, o.lengthPenalty ?? 1, o.earlyStopping ?? false, maxLen));
  const done = new Array<boolean>(B).fill(false);
  let reorder: Int32Array | null = null;
  for (;;) {
    const curLen = seqs[0].length;
    const logits = await step(seqs.map((s) => s[s.length - 1]), reorder);
    const nextScores = new Float64Array(N), nextTokens = new Int32Array(N), nextRows = new Int32Array(N);
    const cand = new Float64Array(K * V);
    for (let b = 0; b < B; b++) {
      if (done[b]) {
        // A finished item keeps running on padding (HF pads it), its rows unchanged.
        for (let k = 0; k < K; k++) {
          nextTokens[b * K + k] = o.padTokenId;
          nextRows[b * K + k] = b * K;
        }
        continue;
      }
      for (let k = 0; k < K; k++) {
        const r = b * K + k;
        const row = Float64Array.from(logits.subarray(r * V, (r + 1) * V));
        logSoftmax(row);
        processScores(row, seqs[r], proc);
        for (let v = 0; v < V; v++) cand[k * V + v] = row[v] + beamScores[r];
      }
      const top = topCandidates(cand, 2 * K);
      let filled = 0;
      for (let rank = 0; rank < top.length && filled < K; rank++) {
        const k = Math.floor(top[rank] / V), t = top[rank] % V, s = cand[top[rank]], src = b * K + k;
        if (eos.has(t)) {
          if (rank >= K) continue;
          hyps[b].add(seqs[src].slice(), s);
        } else {
          nextScores[b * K + filled] = s;
          nextTokens[b * K + filled] = t;
          nextRows[b * K + filled] = src;
          filled++;
        }
      }
      // Only when a processor forced an end token (all else −∞): the rest of the beams are dead (−∞), never chosen.
      for (let v = 0; filled < K; v++) {
        if (eos.has(v)) continue;
        nextScores[b * K + filled] = -Infinity;
        nextTokens[b * K + filled] = v;
        nextRows[b * K + filled] = b * K;
        filled++;
      }
      done[b] = hyps[b].isDone(cand[top[0]], curLen);
    }
    beamScores = nextScores;
    seqs = Array.from({ length: N }, (_, r) => [...seqs[nextRows[r]], nextTokens[r]]);
    reorder = nextRows;
    if (done.every(Boolean) || seqs[0].length >= maxLen) break;
  }
  const out: BeamHypothesis[][] = [];
  for (let b = 0; b < B; b++) {
    if (!done[b]) for (let k = 0; k < K; k++) hyps[b].add(seqs[b * K + k], beamScores[b * K + k]);
    out.push(hyps[b].best(o.numReturnSequences ?? 1).map((h) => ({
      tokens: [...h.tokens.slice(1), ...(h.tokens.length < maxLen ? [o.eosTokenIds[0]] : [])],
      score: h.score,
    })));
  }
  return out;
}
