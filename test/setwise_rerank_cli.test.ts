// `lorakit rerank --strategy setwise` and `--strategy groupwise` end to end on the tiny Llama (its
// config's positions raised in a copy so Rank-R1's long prompt fits): a run
// over 5 candidates, every answer of the untrained model unreadable, takes the
// heapsort's 4 prompts (1 to build the heap, 3 re-heapifies), writes all 5
// candidates, and eval-ir scores the run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const FIX = new URL('./fixtures/hf/llama-tiny/', import.meta.url).pathname;
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '1' } });

test('rerank --strategy setwise / groupwise: heapsort prompts counted, unreadable answers counted, the run written and scored', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-setwise-'));
  const model = path.join(dir, 'model');
  fs.mkdirSync(model);
  for (const f of fs.readdirSync(FIX)) fs.copyFileSync(path.join(FIX, f), path.join(model, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(model, 'config.json'), 'utf8'));
  fs.writeFileSync(path.join(model, 'config.json'), JSON.stringify({ ...cfg, max_position_embeddings: 2048 }));
  const docs = ['cats purr', 'dogs bark', 'fish swim', 'birds sing', 'cows moo'];
  fs.writeFileSync(path.join(dir, 'corpus.jsonl'), docs.map((t, i) => JSON.stringify({ _id: `d${i}`, title: '', text: t })).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'queries.jsonl'), JSON.stringify({ _id: 'q1', text: 'which animal purrs' }) + '\n');
  fs.writeFileSync(path.join(dir, 'run.trec'), docs.map((_, i) => `q1 Q0 d${i} ${i + 1} ${10 - i} bm25`).join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'qrels.tsv'), 'query-id\tcorpus-id\tscore\nq1\td0\t1\n');
  const out = path.join(dir, 'setwise.trec');
  const r = run('rerank', '--strategy', 'setwise', '--model', model, '--run', path.join(dir, 'run.trec'), '--queries', path.join(dir, 'queries.jsonl'), '--corpus', path.join(dir, 'corpus.jsonl'), '--out', out, '--top', '5', '--max-new-tokens', '6', '--quiet');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /setwise: 1 queries, 5 pairs, 4 prompts \(4 unreadable answers/);
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
  assert.equal(lines.length, 5);
  assert.deepEqual(lines.map((l) => l.split(/\s+/)[2]).sort(), ['d0', 'd1', 'd2', 'd3', 'd4']);
  const e = run('eval-ir', '--qrels', path.join(dir, 'qrels.tsv'), '--run', out, '--json');
  assert.equal(e.status, 0, e.stderr);
  assert.ok(JSON.parse(e.stdout).mean['ndcg@10'] > 0);
  // GroupRank: windows of 3, stride 2 over 5 (starts 0, 2, 4) × 2 passes = 6 prompts; every answer unreadable, so each
  // window is scored by the first stage's order and d0 (first everywhere it appears) stays first.
  const gw = path.join(dir, 'groupwise.trec');
  const g = run('rerank', '--strategy', 'groupwise', '--model', model, '--run', path.join(dir, 'run.trec'), '--queries', path.join(dir, 'queries.jsonl'), '--corpus', path.join(dir, 'corpus.jsonl'), '--out', gw, '--top', '5', '--group-size', '3', '--stride', '2', '--passes', '2', '--max-new-tokens', '6', '--quiet');
  assert.equal(g.status, 0, g.stderr);
  assert.match(g.stdout, /groupwise: 1 queries, 5 pairs, 6 prompts \(6 unreadable answers: scored by the first stage\)/);
  const ge = run('eval-ir', '--qrels', path.join(dir, 'qrels.tsv'), '--run', gw, '--json');
  assert.equal(JSON.parse(ge.stdout).mean['ndcg@10'], 1);
  const both = run('rerank', '--strategy', 'setwise', '--mode', 'yesno', '--model', model, '--run', path.join(dir, 'run.trec'), '--queries', path.join(dir, 'queries.jsonl'), '--corpus', path.join(dir, 'corpus.jsonl'), '--out', out);
  assert.match(both.stderr, /--mode or --strategy, not both/);
  fs.rmSync(dir, { recursive: true, force: true });
});
