// A training run's folder (FitOptions.outDir): the lock that keeps one run per
// folder, checkpoints/ and metrics.jsonl. Node; a browser bundle gets
// run_folder.browser.ts (package.json "browser"): a page keeps its run in
// memory.

import fs from 'node:fs';
import path from 'node:path';
import { loadLatestCheckpoint, saveCheckpoint, type CheckpointData, type LoadedCheckpoint, type SaveOptions } from './checkpoint.ts';
import { dropRecordsAfterStep, MetricsLog, type MetricsRecord } from './metrics.ts';
import { acquireRunLock, type RunLock } from './run_lock.ts';

/** Where a resumed run continues: the checkpoint's step and epoch, and its folder. */
export interface ResumedFrom { step: number; epoch: number; from: string }

export class RunFolder {
  private log: MetricsLog | null = null;

  private constructor(
    readonly dir: string,
    private readonly lock: RunLock,
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
      return new RunFolder(dir, lock);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /**
   * Opens metrics.jsonl, once the checkpoint to resume from (if any) is
   * loaded: the steps an interrupted run logged after that checkpoint are
   * logged again by this run, so their records go first.
   */
  startLog(resumed: ResumedFrom | null): void {
    const file = path.join(this.dir, 'metrics.jsonl');
    const superseded = resumed ? dropRecordsAfterStep(file, resumed.step) : 0;
    this.log = new MetricsLog(file);
    if (this.lock.tookOverFrom) this.log.write({ event: 'lock', tookOverFrom: this.lock.tookOverFrom });
    if (resumed) this.log.write({ event: 'resume', ...resumed, superseded });
  }

  /** Appends a record to metrics.jsonl (after startLog). */
  write(record: MetricsRecord): void {
    if (!this.log) throw new Error(`${this.dir}: metrics.jsonl is written after startLog()`);
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
    this.log?.close();
    this.lock.release();
  }
}
