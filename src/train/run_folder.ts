// A training run's folder (FitOptions.outDir): the lock that keeps one run per
// folder, checkpoints/ and metrics.jsonl. Node; a browser bundle gets
// run_folder.browser.ts (package.json "browser"): a page keeps its run in
// memory.

import fs from 'node:fs';
import path from 'node:path';
import { loadLatestCheckpoint, saveCheckpoint, type CheckpointData, type LoadedCheckpoint, type SaveOptions } from './checkpoint.ts';
import { MetricsLog, type MetricsRecord } from './metrics.ts';
import { acquireRunLock, type RunLock } from './run_lock.ts';

export class RunFolder {
  private constructor(
    readonly dir: string,
    private readonly lock: RunLock,
    private readonly log: MetricsLog,
  ) {}

  /**
   * Takes `dir` for this process (a dead run's lock is taken over, and the
   * log says so). A fresh run (not `resume`) owns its folder: an earlier run's
   * checkpoints (possibly at later steps) would otherwise be what a later
   * --resume picks up, and its metrics would be mixed into this run's log.
   */
  static open(dir: string, o: { resume: boolean }): RunFolder {
    const lock = acquireRunLock(dir);
    try {
      if (!o.resume) {
        fs.rmSync(path.join(dir, 'checkpoints'), { recursive: true, force: true });
        fs.rmSync(path.join(dir, 'metrics.jsonl'), { force: true });
      }
      const run = new RunFolder(dir, lock, new MetricsLog(path.join(dir, 'metrics.jsonl')));
      if (lock.tookOverFrom) run.write({ event: 'lock', tookOverFrom: lock.tookOverFrom });
      return run;
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /** Appends a record to metrics.jsonl. */
  write(record: MetricsRecord): void {
    this.log.write(record);
  }

  latest(): Promise<LoadedCheckpoint | null> {
    return loadLatestCheckpoint(path.join(this.dir, 'checkpoints'));
  }

  /** Saves a checkpoint atomically; returns its folder. */
  save(data: CheckpointData, opts: SaveOptions = {}): Promise<string> {
    return saveCheckpoint(path.join(this.dir, 'checkpoints'), data, opts);
  }

  close(): void {
    this.log.close();
    this.lock.release();
  }
}
