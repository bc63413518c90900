// Crash safety of `lorakit train` (test/helpers/crash_trials.ts): kill -9 at
// injected points inside every stage of a checkpoint save and of the final
// adapter write, and at random moments, each run resumed with --resume: the
// final adapter equals the uninterrupted run's byte for byte and metrics.jsonl
// holds every step exactly once. A full disk during a checkpoint write (injected ENOSPC, and
// a real one on a small tmpfs where this machine can mount one) stops the run
// with a message naming the intact previous checkpoint, which --resume uses.
// More trials: scripts/crash_trials.ts.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadLatestCheckpointSync } from '../src/train/checkpoint.ts';
import { adapterBytes, CrashSetup, injectedKillChain, KILL_POINTS, randomKillChain, setupCrashRuns, summarize } from './helpers/crash_trials.ts';

const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const ENV = { ...process.env, LORAKIT_THREADS: '1' };
const SEED = Number(process.env.LORAKIT_CRASH_SEED ?? 20240607);

let s: CrashSetup;
before(async () => {
  s = await setupCrashRuns();
});

test(`kill -9 inside every stage of a checkpoint save and of the adapter write (${KILL_POINTS.length} points), resumed each time: the same adapter bytes, no step lost`, async (t) => {
  const r = await injectedKillChain(s, SEED);
  t.diagnostic(`injected kill trials: ${summarize(r)}`);
  for (const tr of r.trials) t.diagnostic(`  ${tr.how}: ${tr.phase}, latest = step ${tr.latestStep}`);
  assert.equal(r.trials.length, KILL_POINTS.length);
  assert.ok(r.trials.filter((x) => x.phase === 'checkpoint files being written').length >= 3, 'kills inside checkpoint writes leave their temp files (for the next run to remove)');
  assert.deepEqual(r.missingSteps, []);
  assert.deepEqual(r.duplicateSteps, [], 'each step logged once');
  assert.ok(r.identical, 'the resumed run writes the same adapter bytes as the uninterrupted one');
});

test('kill -9 at random moments (seeded), resumed each time: the same adapter bytes, no step lost', async (t) => {
  // Chains until 10 kills have landed (a run may finish before its kill comes), at most 4.
  let kills = 0, inWrites = 0;
  for (let c = 0; c < 4 && kills < 10; c++) {
    const r = await randomKillChain(s, 10 - kills, SEED + c);
    t.diagnostic(`random kill trials (seed ${SEED + c}): ${summarize(r)}`);
    assert.deepEqual(r.missingSteps, []);
    assert.deepEqual(r.duplicateSteps, [], 'each step logged once');
    assert.ok(r.identical, 'the resumed run writes the same adapter bytes as the uninterrupted one');
    kills += r.trials.length;
    inWrites += r.trials.filter((x) => x.phase !== 'between checkpoints' && x.phase !== 'before any checkpoint').length;
  }
  t.diagnostic(`${kills} random kills, ${inWrites} of them inside a checkpoint save`);
  assert.ok(kills >= 5, `only ${kills} kills landed before the runs finished`);
});

function train(out: string, resume: boolean, fault?: string) {
  return spawnSync(process.execPath, [BIN, ...s.args, '--out', out, ...(resume ? ['--resume'] : [])], { env: fault ? { ...ENV, LORAKIT_FAULT: fault } : ENV, encoding: 'utf8' });
}

test('a full disk while a checkpoint is written (injected ENOSPC): the run stops naming the intact previous checkpoint; --resume continues to the same adapter', () => {
  for (const [fault, says] of [
    ['write:tensors.safetensors@5:enospc', /checkpoint-(\d+): could not be written \(the disk is full: ENOSPC.*\); nothing of it was kept\. The previous checkpoint .*checkpoint-(\d+) \(step \2\) is intact and loads: free some space, then continue with --resume/],
    ['write:latest@7:enospc', /checkpoint-(\d+): was written, but .*latest could not be updated \(the disk is full: ENOSPC.*\)\. The previous checkpoint .*checkpoint-(\d+) \(step \2\) is intact and loads/],
  ] as const) {
    const out = path.join(s.dir, `enospc-${fault.split('@')[0].replace(/\W/g, '_')}`);
    const r = train(out, false, fault);
    assert.equal(r.status, 1, r.stderr);
    const m = says.exec(r.stderr);
    assert.ok(m, r.stderr);
    assert.ok(Number(m[2]) < Number(m[1]), 'the previous checkpoint is an earlier one');
    const ck = path.join(out, 'checkpoints');
    assert.ok(!fs.readdirSync(ck).some((n) => n.startsWith('.tmp-')), 'no half-written checkpoint left behind');
    assert.equal(loadLatestCheckpointSync(ck)!.step, Number(/checkpoint-(\d+) \(step/.exec(r.stderr)![1]), 'the checkpoint the message names is the one that loads');
    assert.ok(!fs.existsSync(path.join(out, '.lock')), 'the lock is released on the error');
    const resumed = train(out, true);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.ok(adapterBytes(out).equals(s.reference), `${fault}: resumed to the same adapter bytes`);
  }
});

test('a real full disk (a 1 MiB tmpfs): the checkpoint write fails with ENOSPC, the previous checkpoint loads, --resume after freeing space gives the same adapter', (t) => {
  const mnt = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-tmpfs-'));
  const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { encoding: 'utf8' });
  if (m.status !== 0) {
    t.skip(`cannot mount a tmpfs here (${(m.stderr || String(m.error)).trim()}); the injected ENOSPC test covers the same path`);
    return;
  }
  try {
    const out = path.join(mnt, 'run');
    const killed = train(out, false, 'checkpoint:latest@4:kill');
    assert.equal(killed.signal, 'SIGKILL');
    const before = loadLatestCheckpointSync(path.join(out, 'checkpoints'))!.step;
    // Fill the disk, leaving room for the lock and a few metrics lines but not for a checkpoint (~100 KB).
    const filler = path.join(mnt, 'filler');
    const fd = fs.openSync(filler, 'w');
    const block = Buffer.alloc(4096, 1);
    try {
      for (;;) fs.writeSync(fd, block);
    } catch (e) {
      assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
    }
    fs.closeSync(fd);
    fs.truncateSync(filler, fs.statSync(filler).size - 8 * 4096);
    const full = train(out, true);
    assert.equal(full.status, 1, full.stderr);
    assert.match(full.stderr, new RegExp(`checkpoint-${before + 1}: could not be written \\(the disk is full: ENOSPC.*\\); nothing of it was kept\\. The previous checkpoint .*checkpoint-${before} \\(step ${before}\\) is intact and loads`));
    assert.equal(loadLatestCheckpointSync(path.join(out, 'checkpoints'))!.step, before);
    fs.rmSync(filler);
    const resumed = train(out, true);
    assert.equal(resumed.status, 0, resumed.stderr);
    assert.ok(adapterBytes(out).equals(s.reference), 'resumed to the same adapter bytes');
  } finally {
    spawnSync('umount', [mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  }
});
