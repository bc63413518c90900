#!/usr/bin/env python3
"""Golden IR-metric values from NIST trec_eval itself, for test/retrieval_metrics.test.ts.

Builds seeded random qrels and runs that hit trec_eval's corner cases (graded
relevance, score ties broken by docno, negative qrels values, judged queries
with no relevant document or no results, run queries with no judgments, runs
shorter than the cutoff), runs the trec_eval binary on them and writes the
per-query values it prints to test/fixtures/trec_eval/cases.json.

Usage (trec_eval 10.0, usnistgov/trec_eval; built with `make` in a checkout):
    python3 tools/reference/trec_eval_cases.py --trec-eval /path/to/trec_eval
The fixture was made with commit f4253652c8efd0d86ddffd0d163cc0a0f813111a.
"""
import argparse, json, os, random, subprocess, tempfile

MEASURES = ['-m', 'ndcg_cut.1,3,5,10,20', '-m', 'recip_rank', '-m', 'map', '-m', 'map_cut.5,10', '-m', 'recall.5,10,100', '-m', 'P.5,10']


def make_case(rng, n_queries):
    qrels, run = [], []
    for q in range(n_queries):
        qid = f'q{q}' if q % 3 else str(100 + q)
        pool = [rng.choice(['d', 'D', 'doc-', 'a']) + str(rng.randrange(60)) for _ in range(40)]
        pool = sorted(set(pool))
        kind = rng.random()
        judged = rng.sample(pool, min(len(pool), rng.randrange(1, 25)))
        for d in judged:
            if kind < 0.1:
                rel = 0  # a judged query with no relevant document
            else:
                rel = rng.choice([0, 0, 0, 1, 1, 2, 3, -1])
            qrels.append(f'{qid} 0 {d} {rel}')
        if rng.random() < 0.1:
            continue  # judged, no results
        n_ret = rng.randrange(1, len(pool) + 1)
        docs = rng.sample(pool, n_ret)
        coarse = rng.random() < 0.5  # few distinct scores: many ties
        for i, d in enumerate(docs):
            score = rng.choice([1.0, 2.0, 2.5, 3.0]) if coarse else round(rng.uniform(-5, 5), 3)
            run.append(f'{qid} Q0 {d} {i + 1} {score} tag')
    for q in range(2):  # results with no judgments: ignored
        run.append(f'x{q} Q0 d1 1 1.0 tag')
    return '\n'.join(qrels) + '\n', '\n'.join(run) + '\n'


def trec_eval(binary, qrels, run, extra):
    with tempfile.TemporaryDirectory() as tmp:
        qf, rf = os.path.join(tmp, 'qrels'), os.path.join(tmp, 'run')
        open(qf, 'w').write(qrels)
        open(rf, 'w').write(run)
        out = subprocess.run([binary, '-q', '-c', *extra, qf, rf], check=True, capture_output=True, text=True).stdout
    values = {}
    for line in out.splitlines():
        name, qid, v = line.split()
        if name in ('runid', 'num_q'):
            continue
        values.setdefault(qid, {})[name] = float(v)
    return values


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--trec-eval', required=True)
    ap.add_argument('--out', default=os.path.join(os.path.dirname(__file__), '../../test/fixtures/trec_eval/cases.json'))
    a = ap.parse_args()
    rng = random.Random(20240614)
    cases = []
    for c in range(6):
        qrels, run = make_case(rng, 12)
        level = 2 if c == 5 else 1
        lflag = ['-l', str(level)]
        cases.append({
            'relevanceLevel': level,
            'qrels': qrels,
            'run': run,
            'trec_eval': trec_eval(a.trec_eval, qrels, run, lflag + MEASURES),
            # recip_rank over the top 10 (the MRR@10 of the data READMEs): -M 10
            'trec_eval_M10': trec_eval(a.trec_eval, qrels, run, lflag + ['-M', '10', '-m', 'recip_rank', '-m', 'map']),
        })
    with open(a.out, 'w') as f:
        json.dump({'source': 'usnistgov/trec_eval f4253652c8efd0d86ddffd0d163cc0a0f813111a, -q -c', 'cases': cases}, f, indent=1)
        f.write('\n')


if __name__ == '__main__':
    main()
