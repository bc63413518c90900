// IR measures against NIST trec_eval: hand-checked cases, and per-query values
// trec_eval 10 printed for seeded random qrels/runs full of ties and graded
// judgments (tools/reference/trec_eval_cases.py writes the fixture).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { evaluateRun, parseMeasure } from '../src/retrieval/metrics.ts';
import { formatRun, readQrels, readRun, trecOrder, type Qrels, type Run } from '../src/retrieval/trec.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-ir-'));
function file(name: string, text: string): string {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, text);
  return f;
}
const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('ties are broken by docno descending (strcmp), whatever the rank column says', () => {
  const order = trecOrder([
    { docno: 'b', score: 1 },
    { docno: 'a', score: 1 },
    { docno: 'c', score: 2 },
    { docno: 'B', score: 1 },
  ]).map((d) => d.docno);
  assert.deepEqual(order, ['c', 'b', 'a', 'B']); // 'B' (0x42) < 'a' (0x61) in byte order
});

test('hand-checked: graded nDCG@k (gain = rel), recip rank, AP, recall, P', () => {
  // Judged: d1 rel 2, d2 rel 1, d3 rel 0, d4 rel 3 (not retrieved).
  const qrels: Qrels = new Map([['q', new Map([['d1', 2], ['d2', 1], ['d3', 0], ['d4', 3]])]]);
  // Ranking by score: x (unjudged), d2, d1 / d3 tied at 0.5 → d3 before d1 (docno descending).
  const run: Run = new Map([['q', [{ docno: 'd1', score: 0.5 }, { docno: 'x', score: 3 }, { docno: 'd3', score: 0.5 }, { docno: 'd2', score: 1 }]]]);
  const e = evaluateRun(qrels, run, ['ndcg@3', 'ndcg@10', 'mrr', 'mrr@1', 'map', 'recall@3', 'P@3']).perQuery.get('q')!;
  // ranks: 1 x(-1), 2 d2(1), 3 d3(0), 4 d1(2)
  const dcg3 = 1 / Math.log2(3);
  const idcg3 = 3 / 1 + 2 / Math.log2(3) + 1 / 2;
  close(e['ndcg@3'], dcg3 / idcg3);
  close(e['ndcg@10'], (1 / Math.log2(3) + 2 / Math.log2(5)) / idcg3);
  close(e.mrr, 1 / 2);
  close(e['mrr@1'], 0);
  close(e.map, (1 / 2 + 2 / 4) / 3); // three relevant in the qrels (d1, d2, d4)
  close(e['recall@3'], 1 / 3);
  close(e['P@3'], 1 / 3);
});

test('judged queries with no results or no relevant documents count as 0; unjudged run queries are ignored', () => {
  const qrels: Qrels = new Map([
    ['a', new Map([['d1', 1]])],
    ['b', new Map([['d1', 0]])],
    ['c', new Map([['d1', 1]])],
  ]);
  const run: Run = new Map([
    ['a', [{ docno: 'd1', score: 1 }]],
    ['b', [{ docno: 'd1', score: 1 }]],
    ['z', [{ docno: 'd1', score: 1 }]],
  ]);
  const e = evaluateRun(qrels, run, ['ndcg@10', 'mrr']);
  assert.equal(e.queries, 3);
  assert.deepEqual(e.missing, ['c']);
  assert.deepEqual(e.unjudged, ['z']);
  close(e.mean['ndcg@10'], 1 / 3);
  close(e.mean.mrr, 1 / 3);
});

test('measure names: ours and trec_eval\'s', () => {
  assert.equal(parseMeasure('ndcg_cut.10').name, 'ndcg@10');
  assert.equal(parseMeasure('recip_rank').name, 'mrr');
  assert.equal(parseMeasure('P.5').trecName, 'P_5');
  assert.equal(parseMeasure('map@100').trecName, 'map_cut_100');
  assert.throws(() => parseMeasure('ndcg'), /cutoff/);
  assert.throws(() => parseMeasure('bleu@4'), /expected ndcg@k/);
});

test('files: TREC and BEIR qrels, runs (rank column ignored), duplicates refused, written runs read back identically', () => {
  const trec = readQrels(file('q.trec', '1 0 d1 2\n1 0 d2 0\n2 0 d9 1.7\n'));
  const beir = readQrels(file('q.tsv', 'query-id\tcorpus-id\tscore\n1\td1\t2\n1\td2\t0\n2\td9\t1\n'));
  assert.deepEqual(trec, beir); // atol("1.7") = 1, as trec_eval reads it
  assert.throws(() => readQrels(file('dup.tsv', '1\td1\t1\n1\td1\t0\n')), /judged twice/);
  assert.throws(() => readRun(file('dup.run', '1 Q0 d1 1 2 t\n1 Q0 d1 2 1 t\n')), /appears twice/);
  assert.throws(() => readRun(file('bad.run', '1 Q0 d1 1 t\n')), /dup.run|bad.run:1: expected 6 fields/);
  const run = readRun(file('r.run', '1 Q0 d1 7 0.1 t\n1 Q0 d2 1 0.30000000000000004 t\n1 Q0 d3 2 0.3 t\n'));
  assert.equal(formatRun(run, 't').split('\n')[0], '1 Q0 d2 1 0.30000000000000004 t');
  assert.deepEqual(readRun(file('back.run', formatRun(run, 't'))), new Map([['1', trecOrder(run.get('1')!)]]));
});

test('equals trec_eval 10 on seeded random qrels/runs (ties, graded and negative judgments, -c, -l, -M 10)', () => {
  const fx = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, 'fixtures/trec_eval/cases.json'), 'utf8'));
  const specs = ['ndcg@1', 'ndcg@3', 'ndcg@5', 'ndcg@10', 'ndcg@20', 'mrr', 'map', 'map@5', 'map@10', 'recall@5', 'recall@10', 'recall@100', 'P@5', 'P@10'];
  let checked = 0;
  fx.cases.forEach((c: any, i: number) => {
    const qrels = readQrels(file(`c${i}.qrels`, c.qrels));
    const run = readRun(file(`c${i}.run`, c.run));
    const e = evaluateRun(qrels, run, [...specs, 'mrr@10'], { relevanceLevel: c.relevanceLevel });
    for (const [qid, want] of Object.entries<Record<string, number>>(c.trec_eval)) {
      const got = qid === 'all' ? e.mean : e.perQuery.get(qid)!;
      assert.ok(got, `case ${i}: query ${qid} missing`);
      for (const s of specs) {
        const m = parseMeasure(s);
        // trec_eval prints 4 decimals
        assert.ok(Math.abs(got[m.name] - want[m.trecName]) <= 5.01e-5, `case ${i} query ${qid} ${m.trecName}: ${got[m.name]} vs trec_eval ${want[m.trecName]}`);
        checked++;
      }
      const w10 = c.trec_eval_M10[qid];
      assert.ok(Math.abs(got['mrr@10'] - w10.recip_rank) <= 5.01e-5, `case ${i} query ${qid} recip_rank -M 10: ${got['mrr@10']} vs ${w10.recip_rank}`);
    }
  });
  assert.ok(checked > 1000, `${checked} values checked`);
});
