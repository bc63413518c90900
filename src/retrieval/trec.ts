// TREC run and qrels files, as NIST trec_eval reads them.
//
//   run    "qid Q0 docno rank score tag" (whitespace-separated; trec_eval ignores
//          the rank and orders by score, ties by docno: see metrics.ts)
//   qrels  "qid iter docno rel" (TREC), or BEIR's TSV "query-id<TAB>corpus-id<TAB>score"
//          with a header line. trec_eval reads rel with atol: "1.5" is 1, "-1"
//          is "in the pool, not judged".
//
// Problems name the file and line; a docno twice in one query is an error, as
// in trec_eval (form_res_rels.c).

import fs from 'node:fs';
import { writeFileAtomic } from '../io/atomic.ts';

/** qid → docno → relevance (integer). */
export type Qrels = Map<string, Map<string, number>>;

export interface ScoredDoc {
  docno: string;
  score: number;
}

/** qid → retrieved documents (any order: evaluation and writing sort them). */
export type Run = Map<string, ScoredDoc[]>;

function lines(file: string): string[] {
  if (!fs.existsSync(file)) throw new Error(`${file}: not found`);
  return fs.readFileSync(file, 'utf8').split(/\r?\n/);
}

/** C's atol: optional sign and leading digits ("1.5" → 1, "2e3" → 2); NaN when there are none. */
function atol(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m ? parseInt(m[1], 10) : NaN;
}

/** C's atof as trec_eval reads a score: the longest numeric prefix ("1.5e2x" → 150). */
function atof(s: string): number {
  const m = /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/.exec(s);
  return m ? parseFloat(m[0]) : NaN;
}

/** Reads a TREC qrels file (4 columns) or a BEIR qrels TSV (3 columns, header optional). */
export function readQrels(file: string): Qrels {
  const out: Qrels = new Map();
  lines(file).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const f = line.split(/\s+/);
    if (i === 0 && f.length === 3 && !Number.isFinite(atol(f[2]))) return; // BEIR header: query-id corpus-id score
    let qid: string, docno: string, relText: string;
    if (f.length === 4) [qid, , docno, relText] = f;
    else if (f.length === 3) [qid, docno, relText] = f;
    else throw new Error(`${file}:${i + 1}: expected "qid iter docno rel" (TREC) or "query-id<TAB>corpus-id<TAB>score" (BEIR), got ${f.length} fields`);
    const rel = atol(relText);
    if (!Number.isFinite(rel)) throw new Error(`${file}:${i + 1}: relevance '${relText}' is not an integer`);
    let q = out.get(qid);
    if (!q) out.set(qid, (q = new Map()));
    if (q.has(docno)) throw new Error(`${file}:${i + 1}: document '${docno}' is judged twice for query '${qid}' (trec_eval refuses duplicate judgments)`);
    q.set(docno, rel);
  });
  if (!out.size) throw new Error(`${file}: no judgments`);
  return out;
}

/** Reads a TREC run file ("qid Q0 docno rank score tag"; the rank column is ignored, as trec_eval does). */
export function readRun(file: string): Run {
  const out: Run = new Map();
  const seen = new Map<string, Set<string>>();
  lines(file).forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const f = line.split(/\s+/);
    if (f.length !== 6) throw new Error(`${file}:${i + 1}: expected 6 fields "qid Q0 docno rank score tag", got ${f.length}`);
    const [qid, , docno, , scoreText] = f;
    const score = atof(scoreText);
    if (!Number.isFinite(score)) throw new Error(`${file}:${i + 1}: score '${scoreText}' is not a number`);
    let s = seen.get(qid);
    if (!s) {
      seen.set(qid, (s = new Set()));
      out.set(qid, []);
    }
    if (s.has(docno)) throw new Error(`${file}:${i + 1}: document '${docno}' appears twice for query '${qid}' (trec_eval refuses duplicate documents)`);
    s.add(docno);
    out.get(qid)!.push({ docno, score });
  });
  return out;
}

/** Byte-wise comparison of two strings (C's strcmp on their UTF-8 bytes). */
export function strcmp(a: string, b: string): number {
  if (a === b) return 0;
  const x = Buffer.from(a, 'utf8'), y = Buffer.from(b, 'utf8');
  return Buffer.compare(x, y);
}

/** trec_eval's order: score descending, ties by docno descending (form_res_rels.c comp_sim_docno). */
export function trecOrder(docs: readonly ScoredDoc[]): ScoredDoc[] {
  return [...docs].sort((p, q) => (p.score > q.score ? -1 : p.score < q.score ? 1 : strcmp(q.docno, p.docno)));
}

/** The run as TREC lines, each query's documents in trecOrder with ranks 1…, at most `top` per query. */
export function formatRun(run: Run, tag = 'lorakit', top = Infinity): string {
  const out: string[] = [];
  for (const [qid, docs] of run) {
    trecOrder(docs).slice(0, top).forEach((d, i) => out.push(`${qid} Q0 ${d.docno} ${i + 1} ${formatScore(d.score)} ${tag}`));
  }
  return out.length ? out.join('\n') + '\n' : '';
}

/** Enough digits that reading the score back gives the same double (ties and order survive the file). */
function formatScore(x: number): string {
  return Number.isInteger(x) ? x.toFixed(1) : String(x);
}

export function writeRun(file: string, run: Run, tag = 'lorakit', top = Infinity): void {
  for (const [qid, docs] of run) for (const d of docs) if (/\s/.test(d.docno) || /\s/.test(qid)) throw new Error(`run: id '${/\s/.test(qid) ? qid : d.docno}' contains whitespace (TREC files separate fields by whitespace)`);
  writeFileAtomic(file, formatRun(run, tag, top));
}
