// ROUGE as Google's rouge-score computes it (rouge_scorer.py, tokenize.py,
// scoring.py): the same tokenizer (lowercase, every non-[a-z0-9] run becomes
// a space, tokens longer than 3 characters Porter-stemmed when stemming is
// on), ROUGE-N as clipped n-gram overlap, ROUGE-L as the LCS over the whole
// text, ROUGE-Lsum as the summary-level union LCS over newline-separated
// sentences (counting each token at most as often as it occurs, as
// ROUGE-1.5.5 does), F = 2PR/(P+R). Multi-reference: rouge-score's
// score_multi (per type, the reference with the best F) or the mean over
// references.

import { porterStem } from './porter.ts';

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

/** 'rouge1'…'rouge9', 'rougeL' (whole-text LCS), 'rougeLsum' (summary-level LCS over newline-split sentences). */
export type RougeType = string;

export const DEFAULT_ROUGE_TYPES: RougeType[] = ['rouge1', 'rouge2', 'rougeL', 'rougeLsum'];

export interface RougeOptions {
  /** Porter-stem tokens longer than 3 characters (rouge-score's use_stemmer). Default true, as summarization papers report. */
  stem?: boolean;
}

const stemCache = new Map<string, string>();

function stemCached(t: string): string {
  let s = stemCache.get(t);
  if (s === undefined) {
    s = porterStem(t);
    if (stemCache.size > 200_000) stemCache.clear(); // bounded: a long evaluation does not grow it forever
    stemCache.set(t, s);
  }
  return s;
}

/** rouge-score's tokenize.tokenize. */
export function rougeTokenize(text: string, stem: boolean): string[] {
  const out: string[] = [];
  for (const t of text.toLowerCase().replace(/[^a-z0-9]+/g, ' ').split(/\s+/)) {
    if (!t) continue;
    out.push(stem && t.length > 3 ? stemCached(t) : t);
  }
  return out;
}

export function fmeasure(precision: number, recall: number): number {
  return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
}

function score(hits: number, predictionCount: number, targetCount: number): RougeScore {
  const precision = hits / Math.max(predictionCount, 1), recall = hits / Math.max(targetCount, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = 0; i + n <= tokens.length; i++) {
    const k = tokens.slice(i, i + n).join(' ');
    m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

export function rougeN(target: string[], prediction: string[], n: number): RougeScore {
  const t = ngramCounts(target, n), p = ngramCounts(prediction, n);
  let hits = 0;
  for (const [k, c] of t) hits += Math.min(c, p.get(k) ?? 0);
  return score(hits, Math.max(prediction.length - n + 1, 0), Math.max(target.length - n + 1, 0));
}

/** The LCS dynamic-programming table (rows+1)×(cols+1), row-major. */
function lcsTable(ref: string[], can: string[]): Int32Array {
  const C = can.length + 1, t = new Int32Array((ref.length + 1) * C);
  for (let i = 1; i <= ref.length; i++)
    for (let j = 1; j <= can.length; j++)
      t[i * C + j] = ref[i - 1] === can[j - 1] ? t[(i - 1) * C + j - 1] + 1 : Math.max(t[(i - 1) * C + j], t[i * C + j - 1]);
  return t;
}

/** Length of the longest common subsequence in O(min) memory (two rows). */
export function lcsLength(a: string[], b: string[]): number {
  if (a.length < b.length) [a, b] = [b, a];
  let prev = new Int32Array(b.length + 1), cur = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) cur[j] = a[i - 1] === b[j - 1] ? prev[j - 1] + 1 : Math.max(prev[j], cur[j - 1]);
    [prev, cur] = [cur, prev];
  }
  return prev[b.length];
}

export function rougeL(target: string[], prediction: string[]): RougeScore {
  if (!target.length || !prediction.length) return { precision: 0, recall: 0, fmeasure: 0 };
  const lcs = lcsLength(target, prediction);
  const precision = lcs / prediction.length, recall = lcs / target.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** Indices into `ref` of one LCS with `can`, read back the way rouge-score's _backtrack_norec does (ties go up). */
export function lcsIndices(ref: string[], can: string[]): number[] {
  const t = lcsTable(ref, can), C = can.length + 1, out: number[] = [];
  let i = ref.length, j = can.length;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i * C + j - 1] > t[(i - 1) * C + j]) j--;
    else i--;
  }
  return out.reverse();
}

/** Summary-level LCS (ROUGE paper §3.2) with ROUGE-1.5.5's guard against counting a token more often than it occurs. */
export function rougeLsum(targetSents: string[][], predictionSents: string[][]): RougeScore {
  const m = targetSents.reduce((a, s) => a + s.length, 0), n = predictionSents.reduce((a, s) => a + s.length, 0);
  if (!targetSents.length || !predictionSents.length || !m || !n) return { precision: 0, recall: 0, fmeasure: 0 };
  const count = (sents: string[][]) => {
    const c = new Map<string, number>();
    for (const s of sents) for (const t of s) c.set(t, (c.get(t) ?? 0) + 1);
    return c;
  };
  const cr = count(targetSents), cc = count(predictionSents);
  let hits = 0;
  for (const r of targetSents) {
    const union = new Set<number>();
    for (const c of predictionSents) for (const i of lcsIndices(r, c)) union.add(i);
    for (const i of [...union].sort((a, b) => a - b)) {
      const tok = r[i];
      if ((cc.get(tok) ?? 0) > 0 && (cr.get(tok) ?? 0) > 0) {
        hits++;
        cc.set(tok, cc.get(tok)! - 1);
        cr.set(tok, cr.get(tok)! - 1);
      }
    }
  }
  const precision = hits / n, recall = hits / m;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

function checkType(t: RougeType): void {
  if (t === 'rougeL' || t === 'rougeLsum') return;
  const m = /^rouge([0-9])$/.exec(t);
  if (!m || m[1] === '0') throw new Error(`invalid ROUGE type '${t}': use rouge1…rouge9, rougeL or rougeLsum`);
}

/** Sentences for ROUGE-Lsum: the text split on newlines, empty lines dropped (rouge-score without split_summaries). */
const lsumSentences = (text: string) => text.split('\n').filter((s) => s.length > 0);

/** rouge-score's RougeScorer(types, use_stemmer).score(target, prediction). */
export function rougeScore(target: string, prediction: string, types: RougeType[] = DEFAULT_ROUGE_TYPES, opts: RougeOptions = {}): Record<RougeType, RougeScore> {
  const stem = opts.stem ?? true;
  types.forEach(checkType);
  const tt = rougeTokenize(target, stem), pt = rougeTokenize(prediction, stem);
  const out: Record<RougeType, RougeScore> = {};
  for (const type of types) {
    if (type === 'rougeL') out[type] = rougeL(tt, pt);
    else if (type === 'rougeLsum') {
      out[type] = rougeLsum(lsumSentences(target).map((s) => rougeTokenize(s, stem)), lsumSentences(prediction).map((s) => rougeTokenize(s, stem)));
    } else out[type] = rougeN(tt, pt, Number(type.slice(5)));
  }
  return out;
}

/**
 * One prediction against several references. 'max': rouge-score's
 * score_multi (for each type, the score of the reference with the highest F;
 * ties keep the first); 'mean': precision, recall and F each averaged over
 * the references.
 */
export function rougeScoreMulti(targets: string[], prediction: string, types: RougeType[] = DEFAULT_ROUGE_TYPES, opts: RougeOptions & { aggregate?: 'max' | 'mean' } = {}): Record<RougeType, RougeScore> {
  if (!targets.length) throw new Error('rougeScoreMulti: no reference summaries');
  const all = targets.map((t) => rougeScore(t, prediction, types, opts));
  const out: Record<RougeType, RougeScore> = {};
  for (const type of types) {
    if (opts.aggregate === 'mean') {
      const mean = (k: keyof RougeScore) => all.reduce((a, s) => a + s[type][k], 0) / all.length;
      out[type] = { precision: mean('precision'), recall: mean('recall'), fmeasure: mean('fmeasure') };
    } else out[type] = all.reduce((best, s) => (s[type].fmeasure > best[type].fmeasure ? s : best))[type];
  }
  return out;
}
