// One run per --out folder (src/train/run_lock.ts): a second `lorakit train`
// into the folder of a live run is refused and the first one finishes
// untouched; the lock of a run that died (kill -9) or was torn is taken over;
// a lock from another host is respected; the lock is re-entrant in a process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { acquireRunLock, LOCK_FILE, RunLockedError } from '../src/train/run_lock.ts';

const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const ENV = { ...process.env, LORAKIT_THREADS: '1' };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-lock-'));

/** A pid that is certainly not running: a process that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

test('the lock is taken, re-entrant within a process, and removed on the last release', () => {
  const out = tmp();
  const a = acquireRunLock(out);
  const info = JSON.parse(fs.readFileSync(path.join(out, LOCK_FILE), 'utf8'));
  assert.deepEqual([info.pid, info.host], [process.pid, os.hostname()]);
  const b = acquireRunLock(out);
  b.release();
  assert.ok(fs.existsSync(path.join(out, LOCK_FILE)), 'still held by the outer holder');
  a.release();
  a.release(); // idempotent
  assert.ok(!fs.existsSync(path.join(out, LOCK_FILE)));
});

test("a dead run's lock (kill -9) and a torn lock file are taken over; another host's lock is refused", () => {
  const out = tmp();
  const file = path.join(out, LOCK_FILE);
  const pid = deadPid();
  fs.writeFileSync(file, JSON.stringify({ pid, host: os.hostname(), startedAt: '2020-01-01T00:00:00Z' }));
  const l = acquireRunLock(out);
  assert.equal(l.tookOverFrom?.pid, pid);
  assert.equal(JSON.parse(fs.readFileSync(file, 'utf8')).pid, process.pid);
  l.release();
  fs.writeFileSync(file, '{"pid": 12'); // torn while written
  acquireRunLock(out).release();
  assert.ok(!fs.readdirSync(out).some((f) => f.includes('stale')), 'no leftovers of the take-over');
  fs.writeFileSync(file, JSON.stringify({ pid: 1, host: 'elsewhere.example', startedAt: 'x' }));
  assert.throws(() => acquireRunLock(out), (e: Error) => e instanceof RunLockedError && e.message.startsWith(file) && /host elsewhere\.example/.test(e.message) && /another --out/.test(e.message));
});

test('a second `lorakit train` into the --out of a running one is refused; the first finishes with its checkpoints intact', async () => {
  const dir = tmp();
  const data = path.join(dir, 'story.jsonl');
  fs.writeFileSync(data, ['once upon a time there lived a king', 'what is this, a good movie', 'who was there? the queen', 'hello world, i love music'].map((t) => JSON.stringify({ text: t })).join('\n') + '\n');
  const out = path.join(dir, 'run');
  const args = ['train', '--task', 'causal-lm', '--model', FIX + 'llama-tiny', '--data', data, '--batch', '2', '--lr', '0.01', '--seed', '3', '--checkpoint-every', '100', '--quiet', '--out', out];
  // 2000 steps (~5 ms each on llama-tiny): long enough that the second run's start-up (seconds) lands inside the first.
  const first = spawn(process.execPath, [BIN, ...args, '--epochs', '1000'], { env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  let firstErr = '';
  first.stderr.on('data', (d) => (firstErr += d));
  const done = new Promise<number | null>((resolve) => first.on('exit', (code) => resolve(code)));
  const ckpt = path.join(out, 'checkpoints', 'checkpoint-100');
  for (let i = 0; i < 3000 && !fs.existsSync(ckpt); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(fs.existsSync(ckpt), 'the first run started training');
  const second = spawnSync(process.execPath, [BIN, ...args, '--epochs', '2'], { env: ENV, encoding: 'utf8' });
  assert.equal(second.status, 1, 'refused');
  assert.match(second.stderr, new RegExp(`another lorakit run \\(pid ${first.pid}, started .*\\) is writing into .*run: wait for it to finish or use another --out`));
  assert.equal(await done, 0, firstErr);
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  assert.equal(results.epochLosses.length, 1000, 'the first run went on undisturbed');
  assert.ok(fs.existsSync(path.join(out, 'checkpoints', 'checkpoint-2000')));
  assert.ok(!fs.existsSync(path.join(out, LOCK_FILE)), 'released at the end');
});
