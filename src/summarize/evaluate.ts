// Corpus-level ROUGE for summarization runs: per document the prediction is
// scored against its references ('max' = rouge-score's score_multi, 'mean' =
// the average over references), then precision / recall / F are averaged over
// documents. Optional 95% intervals by bootstrap over documents, as
// rouge-score's BootstrapAggregator reports (2.5th / 50th / 97.5th
// percentiles of the resampled means), seeded.

import { Rng } from '../util/rng.ts';
import { DEFAULT_ROUGE_TYPES, rougeScoreMulti, type RougeScore, type RougeType } from './rouge.ts';

export interface CorpusRouge {
  documents: number;
  /** Mean over documents of each type's score. */
  scores: Record<RougeType, RougeScore>;
  /** Bootstrap interval of the mean F (when asked for). */
  intervals?: Record<RougeType, { low: number; mid: number; high: number }>;
}

export interface CorpusRougeOptions {
  types?: RougeType[];
  stem?: boolean;
  aggregate?: 'max' | 'mean';
  /** Bootstrap resamples (0 = none). */
  bootstrap?: number;
  seed?: number;
}

/** Accumulates per-document ROUGE; `result()` averages. */
export class RougeAccumulator {
  private readonly rows: Record<RougeType, RougeScore>[] = [];
  readonly types: RougeType[];
  constructor(private readonly o: CorpusRougeOptions = {}) {
    this.types = o.types ?? DEFAULT_ROUGE_TYPES;
  }

  add(references: string[], prediction: string): Record<RougeType, RougeScore> {
    const r = rougeScoreMulti(references, prediction, this.types, { stem: this.o.stem ?? true, aggregate: this.o.aggregate ?? 'max' });
    this.rows.push(r);
    return r;
  }

  get count(): number {
    return this.rows.length;
  }

  result(): CorpusRouge {
    const n = this.rows.length;
    if (!n) throw new Error('no documents were scored');
    const scores: Record<RougeType, RougeScore> = {};
    for (const t of this.types) {
      const mean = (k: keyof RougeScore) => this.rows.reduce((a, r) => a + r[t][k], 0) / n;
      scores[t] = { precision: mean('precision'), recall: mean('recall'), fmeasure: mean('fmeasure') };
    }
    const out: CorpusRouge = { documents: n, scores };
    const samples = this.o.bootstrap ?? 0;
    if (samples > 0) {
      const rng = new Rng(this.o.seed ?? 0);
      const means: Record<RougeType, number[]> = Object.fromEntries(this.types.map((t) => [t, []]));
      for (let s = 0; s < samples; s++) {
        const sum: Record<RougeType, number> = Object.fromEntries(this.types.map((t) => [t, 0]));
        for (let i = 0; i < n; i++) {
          const r = this.rows[Math.min(n - 1, Math.floor(rng.uniform() * n))];
          for (const t of this.types) sum[t] += r[t].fmeasure;
        }
        for (const t of this.types) means[t].push(sum[t] / n);
      }
      const pct = (xs: number[], p: number) => {
        const s = [...xs].sort((a, b) => a - b);
        const pos = (p / 100) * (s.length - 1), lo = Math.floor(pos), hi = Math.ceil(pos);
        return s[lo] + (s[hi] - s[lo]) * (pos - lo); // numpy's default (linear) percentile
      };
      out.intervals = Object.fromEntries(this.types.map((t) => [t, { low: pct(means[t], 2.5), mid: pct(means[t], 50), high: pct(means[t], 97.5) }]));
    }
    return out;
  }
}
