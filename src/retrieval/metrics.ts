// IR measures exactly as NIST trec_eval 10 computes them (usnistgov/trec_eval:
// form_res_rels.c, m_ndcg_cut.c, m_recip_rank.c, m_map.c, m_map_cut.c,
// m_recall.c, m_P.c, trec_eval.c, meas_avg.c):
//
// - A query's documents are ordered by score descending, ties by docno
//   descending (strcmp); the run's own rank column is ignored.
// - Relevance: the qrels value; a retrieved document absent from the qrels is
//   -1 (not in the pool), a qrels value < 0 is "in the pool, unjudged". A
//   document is relevant when rel ≥ relevanceLevel (default 1).
// - nDCG@k: gain = the relevance value itself (not 2^rel − 1), discount
//   log2(rank + 1); the ideal ranking sorts every judged document with rel ≥ 1
//   by rel; a query with no relevant documents scores 0.
// - recip_rank: 1 / rank of the first relevant document, 0 if none.
//   "mrr@k" is recip_rank over the top k (trec_eval -M k -m recip_rank).
// - map: Σ over relevant retrieved of precision at its rank, / number of
//   relevant documents in the qrels; "map@k" = map_cut.k.
// - recall@k: relevant in the top k / relevant in the qrels (0 with none).
// - P@k: relevant in the top k / k.
// - Averages run over every query in the qrels (trec_eval -c): a judged query
//   with no results scores 0; queries in the run but not in the qrels are ignored.

import { strcmp, trecOrder, type Qrels, type Run, type ScoredDoc } from './trec.ts';

export type MeasureKind = 'ndcg' | 'mrr' | 'map' | 'recall' | 'P';

export interface Measure {
  kind: MeasureKind;
  /** Rank cutoff (undefined: the whole ranking, for mrr and map). */
  k?: number;
  /** Our name: 'ndcg@10', 'mrr@10', 'map', 'recall@100', 'P@5'. */
  name: string;
  /** trec_eval's name: 'ndcg_cut_10', 'recip_rank' (with -M k for a cutoff), 'map_cut_100', 'recall_100', 'P_5'. */
  trecName: string;
}

const ALIASES: Record<string, MeasureKind> = { ndcg: 'ndcg', ndcg_cut: 'ndcg', mrr: 'mrr', recip_rank: 'mrr', rr: 'mrr', map: 'map', map_cut: 'map', recall: 'recall', r: 'recall', p: 'P', precision: 'P' };

/** Parses 'ndcg@10', 'ndcg_cut.10', 'mrr@10', 'recip_rank', 'map', 'map@100', 'recall@100', 'recall.100', 'P@10', 'P.10'. */
export function parseMeasure(spec: string): Measure {
  const m = /^([A-Za-z_]+?)(?:[@._](\d+))?$/.exec(spec.trim());
  const kind = m ? ALIASES[m[1].toLowerCase()] : undefined;
  if (!m || !kind) throw new Error(`measure '${spec}': expected ndcg@k, mrr[@k], map[@k], recall@k or P@k (trec_eval names ndcg_cut.k, recip_rank, map, map_cut.k, recall.k, P.k also work)`);
  const k = m[2] !== undefined ? Number(m[2]) : undefined;
  if (k !== undefined && !(k > 0)) throw new Error(`measure '${spec}': the cutoff must be a positive integer`);
  if ((kind === 'ndcg' || kind === 'recall' || kind === 'P') && k === undefined) throw new Error(`measure '${spec}': give a cutoff, e.g. ${kind}@10`);
  const name = k === undefined ? kind : `${kind}@${k}`;
  const trecName = { ndcg: `ndcg_cut_${k}`, mrr: 'recip_rank', map: k === undefined ? 'map' : `map_cut_${k}`, recall: `recall_${k}`, P: `P_${k}` }[kind];
  return { kind, k, name, trecName };
}

export const DEFAULT_MEASURES = ['ndcg@10', 'mrr@10', 'map', 'recall@100'];

export interface EvalOptions {
  /** Documents with rel ≥ this count as relevant (trec_eval -l; default 1). */
  relevanceLevel?: number;
}

export interface IrEvaluation {
  /** Mean of each measure over the judged queries (by measure name). */
  mean: Record<string, number>;
  /** Per query, per measure. */
  perQuery: Map<string, Record<string, number>>;
  /** Queries averaged over (every query in the qrels). */
  queries: number;
  /** Judged queries the run has no results for (they score 0). */
  missing: string[];
  /** Run queries with no judgments (ignored). */
  unjudged: string[];
}

interface Ranked {
  /** Relevance value at each rank (−1: not in the qrels, −2: judged < 0). */
  rels: number[];
  /** Judged documents with rel ≥ relevanceLevel. */
  numRel: number;
  /** rel values ≥ 1 of the judged documents, descending (the ideal ranking's gains). */
  idealGains: number[];
}

function rank(judged: Map<string, number>, docs: readonly ScoredDoc[], relevanceLevel: number): Ranked {
  const rels = trecOrder(docs).map((d) => {
    const r = judged.get(d.docno);
    return r === undefined ? -1 : r < 0 ? -2 : r;
  });
  let numRel = 0;
  const idealGains: number[] = [];
  for (const r of judged.values()) {
    if (r >= relevanceLevel) numRel++;
    if (r >= 1) idealGains.push(r);
  }
  idealGains.sort((a, b) => b - a);
  return { rels, numRel, idealGains };
}

function value(m: Measure, r: Ranked, level: number): number {
  const { rels, numRel } = r;
  const k = m.k ?? Infinity;
  const top = rels.length > k ? rels.slice(0, k) : rels;
  switch (m.kind) {
    case 'ndcg': {
      let dcg = 0;
      top.forEach((g, i) => {
        if (g > 0) dcg += g / Math.log2(i + 2);
      });
      let ideal = 0;
      r.idealGains.slice(0, k).forEach((g, i) => (ideal += g / Math.log2(i + 2)));
      return ideal > 0 ? dcg / ideal : dcg;
    }
    case 'mrr': {
      const i = top.findIndex((g) => g >= level);
      return i < 0 ? 0 : 1 / (i + 1);
    }
    case 'map': {
      let sum = 0, found = 0;
      top.forEach((g, i) => {
        if (g >= level) sum += ++found / (i + 1);
      });
      return found ? sum / numRel : 0;
    }
    case 'recall': {
      if (!numRel) return 0;
      return top.filter((g) => g >= level).length / numRel;
    }
    case 'P':
      return top.filter((g) => g >= level).length / k;
  }
}

/** Evaluates `run` against `qrels` as trec_eval -c does (measure specs as parseMeasure takes). */
export function evaluateRun(qrels: Qrels, run: Run, measures: readonly (string | Measure)[] = DEFAULT_MEASURES, o: EvalOptions = {}): IrEvaluation {
  const ms = measures.map((m) => (typeof m === 'string' ? parseMeasure(m) : m));
  const level = o.relevanceLevel ?? 1;
  const perQuery = new Map<string, Record<string, number>>();
  const sums: Record<string, number> = Object.fromEntries(ms.map((m) => [m.name, 0]));
  const missing: string[] = [];
  // trec_eval walks the qrels queries in qid order (strcmp).
  const qids = [...qrels.keys()].sort(strcmp);
  for (const qid of qids) {
    const docs = run.get(qid);
    if (!docs) missing.push(qid);
    const r = rank(qrels.get(qid)!, docs ?? [], level);
    const row: Record<string, number> = {};
    for (const m of ms) {
      row[m.name] = value(m, r, level);
      sums[m.name] += row[m.name];
    }
    perQuery.set(qid, row);
  }
  const mean = Object.fromEntries(ms.map((m) => [m.name, sums[m.name] / qids.length]));
  const unjudged = [...run.keys()].filter((q) => !qrels.has(q));
  return { mean, perQuery, queries: qids.length, missing, unjudged };
}
