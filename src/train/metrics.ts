/**
 * Append-only metrics log in JSON Lines: one object per line, each with a
 * `time` (ISO 8601) field first. Every `write` is one `write(2)` of a whole
 * line on a file opened for appending, so a crash loses at most the line
 * being written and never interleaves half lines; `fsync: true` also forces
 * each line to disk. Non-finite numbers (NaN, Infinity: a diverged loss) are
 * written as the strings "NaN", "Infinity", "-Infinity" instead of JSON's
 * silent null, and `readMetrics` turns them back into numbers. Opening a log
 * whose last line was torn by a crash starts a new line first.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../io/atomic.ts";

export type MetricsRecord = Record<string, unknown>;

export interface MetricsLogOptions {
  /** fsync after every line (default false: written to the OS, not forced to disk). */
  fsync?: boolean;
}

function replacer(_key: string, v: unknown): unknown {
  if (typeof v === "number" && !Number.isFinite(v)) return String(v);
  if (typeof v === "bigint") return Number(v);
  if (v instanceof Float32Array || v instanceof Float64Array) return Array.from(v, (x) => (Number.isFinite(x) ? x : String(x)));
  return v;
}

export class MetricsLog {
  readonly path: string;
  private fd: number | null;
  private readonly sync: boolean;

  constructor(file: string, opts: MetricsLogOptions = {}) {
    this.path = file;
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.fd = fs.openSync(file, "a");
    this.sync = opts.fsync ?? false;
    // If a crash left a torn last line, start on a fresh line.
    const size = fs.fstatSync(this.fd).size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      const rfd = fs.openSync(file, "r");
      try {
        fs.readSync(rfd, last, 0, 1, size - 1);
      } finally {
        fs.closeSync(rfd);
      }
      if (last[0] !== 0x0a) fs.writeSync(this.fd, "\n");
    }
  }

  /** Appends one record (with `time` added) as a line. Returns the line written. */
  write(record: MetricsRecord): string {
    if (this.fd === null) throw new Error(`MetricsLog ${this.path}: write after close`);
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...record }, replacer)}\n`;
    const buf = Buffer.from(line, "utf8");
    try {
      let done = 0;
      while (done < buf.length) done += fs.writeSync(this.fd, buf, done, buf.length - done);
      if (this.sync) fs.fsyncSync(this.fd);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new Error(`${this.path}: could not append a record (${code === "ENOSPC" ? "the disk is full" : (e as Error).message}); the records before it are kept`, { cause: e });
    }
    return line;
  }

  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}

const NON_FINITE: Record<string, number> = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity };

/**
 * Reads a metrics log. Lines that do not parse (a line torn by a crash, after
 * which the next run starts a fresh line) are skipped and passed to
 * `onBadLine` if given; `strict: true` throws on them instead, naming the line.
 */
export function readMetrics(
  file: string,
  opts: { strict?: boolean; onBadLine?: (line: number, text: string) => void } = {},
): MetricsRecord[] {
  const lines = fs.readFileSync(file, "utf8").split("\n");
  const out: MetricsRecord[] = [];
  lines.forEach((l, i) => {
    if (l.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(l, (_k, x: unknown) => (typeof x === "string" && x in NON_FINITE ? NON_FINITE[x] : x));
    } catch (e) {
      if (opts.strict) throw new Error(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
      opts.onBadLine?.(i + 1, l);
      return;
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      if (opts.strict) throw new Error(`${file}:${i + 1}: not a JSON object`);
      opts.onBadLine?.(i + 1, l);
      return;
    }
    out.push(v as MetricsRecord);
  });
  return out;
}

/**
 * A resumed run continues from its checkpoint at `step`: the step and eval
 * records an interrupted run logged after it are superseded (the resumed run
 * logs those steps again), so they are dropped — atomically, keeping every
 * other record (resume, lock, diverged events) — and the log holds each step once.
 * Returns how many records were dropped.
 */
export function dropRecordsAfterStep(file: string, step: number): number {
  if (!fs.existsSync(file)) return 0;
  const kept: string[] = [];
  let dropped = 0;
  for (const line of fs.readFileSync(file, "utf8").split("\n")) {
    if (!line.trim()) continue;
    let r: MetricsRecord;
    try {
      r = JSON.parse(line);
    } catch {
      dropped++; // a line torn by the crash
      continue;
    }
    if ((r.event === "step" || r.event === "eval") && typeof r.step === "number" && r.step > step) {
      dropped++;
      continue;
    }
    kept.push(line);
  }
  if (dropped) writeFileAtomic(file, kept.map((l) => `${l}\n`).join(""));
  return dropped;
}
