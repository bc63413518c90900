// Crash-safe file writing: a temporary file in the same folder, fsync, rename
// over the target, fsync the folder. Readers (and a run resumed after a crash)
// see the old content or the new one, never a torn file. Adapter files,
// checkpoints, results and exports all write through here.

import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { faultAct, faultDue } from '../util/faults.ts';

/** fsync a folder (after a rename in it); a no-op where folders cannot be fsynced (Windows). */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // The rename already happened; only its durability across power loss is weaker there.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  let done = 0;
  while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done);
}

type Content = string | Uint8Array | Uint8Array[];

/**
 * Creates `file` (it must not exist: flag 'wx'), writes `data` and fsyncs it.
 * `label` names it for fault injection (src/util/faults.ts: 'write:<label>').
 */
export function writeFileSynced(file: string, data: Content, flag = 'wx', label = path.basename(file)): void {
  const chunks = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : Array.isArray(data) ? data : [data];
  const fd = fs.openSync(file, flag);
  try {
    const fault = faultDue(`write:${label}`);
    if (fault) {
      // A torn write: half the bytes reach the file, then the process dies or the disk is full.
      const all = Buffer.concat(chunks);
      writeAll(fd, all.subarray(0, all.length >> 1));
      faultAct(fault, `write:${label}`);
    }
    for (const c of chunks) writeAll(fd, c);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Temp files of `base` left in `dir` by writers that died mid-write (kill -9): removed before the next write. */
function removeDeadTemps(dir: string, base: string): void {
  const prefix = `.${base}.tmp-`;
  for (const n of fs.readdirSync(dir)) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (Number.isSafeInteger(pid) && pid > 0 && !alive(pid)) fs.rmSync(path.join(dir, n), { force: true });
  }
}

/**
 * Writes `data` (a string, bytes, or byte chunks written in order) to `file`
 * atomically. Creates the folder if needed. Synchronous.
 */
export function writeFileAtomic(file: string, data: Content): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true });
  removeDeadTemps(dir, path.basename(file));
  const tmp = path.join(dir, `.${path.basename(file)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    writeFileSynced(tmp, data, 'wx', path.basename(file));
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}
