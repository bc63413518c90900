// One training run per output folder: `<out>/.lock` holds the owner's pid,
// host and start time. A second run into the same folder is refused while the
// owner lives (its checkpoints and metrics would be overwritten under it); a
// lock left by a run that died (kill -9, power loss) is taken over, so
// `--resume` after a crash needs no manual cleanup. Re-entrant within a process
// (a job that holds the lock may call fit, which takes it again).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export const LOCK_FILE = '.lock';

export class RunLockedError extends Error {
  constructor(readonly lockFile: string, problem: string) {
    super(`${lockFile}: ${problem}`);
    this.name = 'RunLockedError';
  }
}

interface LockInfo { pid: number; host: string; startedAt: string }

export interface RunLock {
  readonly file: string;
  /** Set when a dead run's lock was taken over: its owner. */
  readonly tookOverFrom?: LockInfo;
  release(): void;
}

const held = new Map<string, { count: number; tookOverFrom?: LockInfo }>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

function readLock(file: string): LockInfo | null | 'unreadable' {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const j = JSON.parse(text);
    if (Number.isSafeInteger(j.pid) && typeof j.host === 'string') return { pid: j.pid, host: j.host, startedAt: String(j.startedAt) };
  } catch {
    // a lock torn by a crash while it was written
  }
  return 'unreadable';
}

/** Takes `<outDir>/.lock` for this process; throws RunLockedError while another live run holds it. */
export function acquireRunLock(outDir: string): RunLock {
  fs.mkdirSync(outDir, { recursive: true });
  const file = path.join(path.resolve(outDir), LOCK_FILE);
  const mine = held.get(file);
  if (mine) {
    mine.count++;
    return handle(file, mine.tookOverFrom);
  }
  const me: LockInfo = { pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() };
  let tookOverFrom: LockInfo | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      try {
        fs.writeSync(fd, JSON.stringify(me) + '\n');
      } finally {
        fs.closeSync(fd);
      }
      held.set(file, { count: 1, tookOverFrom });
      return handle(file, tookOverFrom);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = readLock(file);
    if (owner === null) continue; // released meanwhile
    if (owner !== 'unreadable') {
      if (owner.host !== me.host) {
        throw new RunLockedError(file, `another lorakit run (pid ${owner.pid} on host ${owner.host}, started ${owner.startedAt}) writes into ${outDir}. Use another --out, or delete ${file} if you are sure that run is gone`);
      }
      if (owner.pid === process.pid || alive(owner.pid)) {
        throw new RunLockedError(file, `another lorakit run (pid ${owner.pid}, started ${owner.startedAt}) is writing into ${outDir}: wait for it to finish or use another --out`);
      }
    }
    // The owner is dead. Move its lock aside atomically (one contender wins the
    // rename), check that what moved is still that dead lock, and retry the create.
    const aside = `${file}.stale-${randomBytes(6).toString('hex')}`;
    try {
      fs.renameSync(file, aside);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    const moved = readLock(aside);
    const deadPid = owner === 'unreadable' ? null : owner.pid;
    if (moved !== null && moved !== 'unreadable' && moved.pid !== deadPid && alive(moved.pid)) {
      fs.renameSync(aside, file); // a live run took it over between our read and rename: give it back
      continue;
    }
    fs.rmSync(aside, { force: true });
    tookOverFrom = owner === 'unreadable' ? { pid: 0, host: me.host, startedAt: 'unknown (the lock file was torn)' } : owner;
  }
  throw new RunLockedError(file, `could not take the lock after several attempts: other runs keep starting in ${outDir}`);
}

function handle(file: string, tookOverFrom?: LockInfo): RunLock {
  let released = false;
  return {
    file,
    tookOverFrom,
    release() {
      if (released) return;
      released = true;
      const h = held.get(file);
      if (!h) return;
      if (--h.count > 0) return;
      held.delete(file);
      fs.rmSync(file, { force: true });
    },
  };
}
