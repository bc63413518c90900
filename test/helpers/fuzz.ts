// Fuzzing the readers of every file a user hands lorakit (test/fuzz.test.ts,
// scripts/fuzz.ts): seeded fast-check cases, each written to a real file and
// loaded through the public entry point. Every case must either load or throw
// a FileFormatError (src/util/errors.ts) whose message names the file — never
// another exception (a TypeError is a crash), never a hang (each case is timed)
// and never an allocation beyond the file's size (the process's ArrayBuffer
// memory is measured around each case).
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FileFormatError, isInternalError } from '../../src/util/errors.ts';

export interface FuzzTarget<T> {
  name: string;
  arbitrary: () => fc.Arbitrary<T>;
  /** Writes the case into `dir` (reused between cases); returns the file under test and its size in bytes. */
  write: (dir: string, c: T) => { file: string; bytes: number };
  /** Loads through the public reader; resolves when it loaded. */
  load: (file: string) => unknown;
}

export interface FuzzStats {
  target: string;
  runs: number;
  loaded: number;
  rejected: number;
  /** Distinct problems (messages with the path and numbers taken out), most frequent first. */
  problems: [string, number][];
  slowestMs: number;
  /** Largest growth of ArrayBuffer memory across one case beyond that case's file size (bytes; ≤ 0: never more than the file). */
  worstExtraBytes: number;
  ms: number;
}

/** A case may take at most this long (a hang or quadratic blow-up fails it). */
export const CASE_MS = 2000;
/** ArrayBuffer growth allowed over the file's size (decoding copies; half floats upcast ×2), plus slack for pooled buffers. */
const MEMORY_FACTOR = 4, MEMORY_SLACK = 8 << 20;

const shm = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();

export async function fuzz<T>(target: FuzzTarget<T>, opts: { numRuns: number; seed: number }): Promise<FuzzStats> {
  const dir = fs.mkdtempSync(path.join(shm, `lorakit-fuzz-${target.name.replace(/\W+/g, '_')}-`));
  const problems = new Map<string, number>();
  let loaded = 0, rejected = 0, slowest = 0, worstExtra = -Infinity;
  const t0 = performance.now();
  try {
    await fc.assert(
      fc.asyncProperty(target.arbitrary(), async (c) => {
        const { file, bytes } = target.write(dir, c);
        const before = process.memoryUsage().arrayBuffers;
        const start = performance.now();
        let error: unknown = null;
        try {
          await target.load(file);
        } catch (e) {
          error = e;
        }
        const ms = performance.now() - start;
        const grew = process.memoryUsage().arrayBuffers - before;
        slowest = Math.max(slowest, ms);
        worstExtra = Math.max(worstExtra, grew - bytes);
        if (ms > CASE_MS) throw new Error(`${target.name}: a case took ${ms.toFixed(0)} ms (limit ${CASE_MS})`);
        if (grew > MEMORY_FACTOR * bytes + MEMORY_SLACK) throw new Error(`${target.name}: ArrayBuffer memory grew by ${grew} bytes on a ${bytes}-byte file`);
        if (error === null) {
          loaded++;
          return;
        }
        if (!(error instanceof FileFormatError)) {
          throw new Error(`${target.name}: threw ${(error as Error)?.constructor?.name ?? typeof error}, not a FileFormatError: ${(error as Error)?.stack ?? String(error)}`);
        }
        for (let c: unknown = error.cause; c; c = (c as Error).cause) {
          if (isInternalError(c)) throw new Error(`${target.name}: a crash inside lorakit, wrapped: ${(c as Error).stack}`);
        }
        if (!error.message.includes(error.file) || !(error.file === file || file.startsWith(error.file + path.sep) || error.file.startsWith(path.dirname(file)))) {
          throw new Error(`${target.name}: the error does not name the file under test (${file}): ${error.message}`);
        }
        rejected++;
        const key = error.message.split('\n')[0].replaceAll(dir, '<dir>').replace(/"[^"]*"|'[^']*'|\d+/g, '_').slice(0, 110);
        problems.set(key, (problems.get(key) ?? 0) + 1);
      }),
      { numRuns: opts.numRuns, seed: opts.seed, endOnFailure: true },
    );
  } catch (e) {
    // fast-check keeps the failing case's error as the cause: show it first.
    const why = (e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : '';
    throw new Error(`${why}\n${(e as Error).message}`.slice(0, 4000));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return {
    target: target.name, runs: opts.numRuns, loaded, rejected,
    problems: [...problems].sort((a, b) => b[1] - a[1]), slowestMs: slowest, worstExtraBytes: worstExtra, ms: performance.now() - t0,
  };
}

export function describeStats(s: FuzzStats): string {
  return `${s.target}: ${s.runs} cases in ${(s.ms / 1000).toFixed(1)} s: ${s.loaded} loaded, ${s.rejected} rejected with an error naming the file (${s.problems.length} distinct problems); slowest case ${s.slowestMs.toFixed(1)} ms; ArrayBuffer growth in a case at most ${s.worstExtraBytes <= 0 ? 'the file size' : `${(s.worstExtraBytes / 1024).toFixed(0)} KiB beyond the file size`}`;
}

// ---- generators shared by the targets -----------------------------------------

/** Numbers a hostile file puts where sizes go: small, zero, negative, fractional, huge, beyond 2^53. */
export const hostileNumber = () => fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 8 }) },
  { weight: 1, arbitrary: fc.constantFrom(-1, 0.5, 1e9, 2 ** 31, 2 ** 32 + 1, 2 ** 53, 2 ** 64, 1e300, -0) },
  { weight: 1, arbitrary: fc.double() },
);

/** Any JSON value, or a hostile number, or a plausible string. */
export const hostileValue = () => fc.oneof(
  { weight: 2, arbitrary: hostileNumber() },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, [], {}) },
);

/** A JSON object with some of its keys replaced, deleted or added. */
export function mutatedObject(base: Record<string, unknown>, keys: string[], value = hostileValue): fc.Arbitrary<Record<string, unknown>> {
  const key = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...keys) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
  return fc.array(fc.tuple(key, fc.option(value(), { freq: 6 })), { minLength: 1, maxLength: 4 }).map((edits) => {
    const o: Record<string, unknown> = structuredClone(base);
    for (const [k, v] of edits) {
      if (v === null) delete o[k];
      else o[k] = v;
    }
    return o;
  });
}

/** Text of a JSON file: the object, or broken text now and then (truncated, not JSON, not UTF-8, empty). */
export function jsonFileText(obj: fc.Arbitrary<unknown>): fc.Arbitrary<Uint8Array> {
  const enc = (x: unknown) => new TextEncoder().encode(JSON.stringify(x));
  return fc.oneof(
    { weight: 10, arbitrary: obj.map(enc) },
    { weight: 1, arbitrary: fc.tuple(obj, fc.nat()).map(([o, n]) => { const b = enc(o); return b.subarray(0, n % (b.length + 1)); }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map(enc) },
  );
}
