/**
 * Crash-safe training checkpoints (single files go through
 * src/io/atomic.ts's writeFileAtomic).
 *
 * Checkpoints live in a folder:
 *
 *   dir/
 *     checkpoint-120/        one per saved step
 *       tensors.safetensors  every Float32Array (F32, 1-D): parameters as
 *                            "params/<name>", state tensors as "state/t<k>"
 *                            (opens with Python's safetensors for inspection)
 *       state.json           step, parameter names, sha256 of the tensors
 *                            file, optimizer / rng / trainer state
 *     checkpoint-160/
 *     latest                 "checkpoint-160\n", written atomically
 *     .tmp-ckpt-<random>/    a save in progress (or one a crash left behind)
 *
 * A save writes everything into `.tmp-ckpt-*`, fsyncs the files and the
 * folder, renames it to `checkpoint-<step>` (a single atomic rename), then
 * points `latest` at it, then prunes old checkpoints down to `keepLast`. A
 * crash at any point leaves the previous checkpoint loadable; the loader
 * ignores `.tmp-*` folders, verifies the sha256, and if `latest` is missing or
 * names a broken checkpoint falls back to the newest checkpoint that loads.
 *
 * State trees (optimizer, trainer, ...) are JSON values that may also contain
 * Float32Arrays (stored in tensors.bin), Maps, and non-finite numbers (NaN,
 * +-Infinity, which plain JSON would turn into null): they come back as they
 * went in. One writer per checkpoint folder.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { createHash, randomBytes } from "node:crypto";
import { fsyncDir, writeFileAtomic, writeFileSynced } from "../io/atomic.ts";
import { faultPoint } from "../util/faults.ts";
import type { RngState } from "../util/rng.ts";
import { parseSafetensors, serializeSafetensors, type TensorInput } from "../io/safetensors.ts";

/* ------------------------------------------------------------------ */
/* state trees                                                         */

/** JSON values, Float32Arrays and Maps of them, nested. */
export type StateTree =
  | null
  | boolean
  | number
  | string
  | Float32Array
  | StateTree[]
  | Map<string, StateTree>
  | { [key: string]: StateTree | undefined };

type Encoded = unknown;

const RESERVED = new Set(["$tensor", "$number", "$map"]);

class TensorSink {
  readonly tensors = new Map<string, TensorInput>();
  private n = 0;
  /** Stores a state tensor; returns its name. */
  addState(a: Float32Array): string {
    const name = `state/t${this.n++}`;
    this.tensors.set(name, { dtype: "F32", shape: [a.length], data: a });
    return name;
  }
}

function encodeTree(v: unknown, sink: TensorSink, where: string): Encoded {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") return Number.isFinite(v) ? v : { $number: String(v) };
  if (v instanceof Float32Array) return { $tensor: sink.addState(v) };
  if (ArrayBuffer.isView(v)) {
    throw new TypeError(`checkpoint: ${where} is a ${v.constructor.name}; only Float32Array tensors are stored`);
  }
  if (Array.isArray(v)) return v.map((x, i) => encodeTree(x === undefined ? null : x, sink, `${where}[${i}]`));
  if (v instanceof Map) {
    return {
      $map: [...v.entries()].map(([k, x]) => {
        if (typeof k !== "string") throw new TypeError(`checkpoint: ${where} is a Map with a non-string key`);
        return [k, encodeTree(x, sink, `${where}.get(${JSON.stringify(k)})`)];
      }),
    };
  }
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, Encoded> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (RESERVED.has(k)) throw new TypeError(`checkpoint: ${where} uses the reserved key "${k}"`);
      if (x === undefined) continue;
      out[k] = encodeTree(x, sink, `${where}.${k}`);
    }
    return out;
  }
  throw new TypeError(`checkpoint: ${where} cannot be stored (${typeof v === "object" ? v.constructor?.name ?? "object" : typeof v})`);
}

function decodeTree(v: Encoded, tensors: Map<string, Float32Array>): StateTree {
  if (v === null || typeof v !== "object") return v as StateTree;
  if (Array.isArray(v)) return v.map((x) => decodeTree(x, tensors));
  const o = v as Record<string, unknown>;
  if (typeof o.$tensor === "string") {
    const t = tensors.get(o.$tensor);
    if (!t) throw new Error(`checkpoint: state refers to missing tensor ${o.$tensor}`);
    return t;
  }
  if (typeof o.$number === "string") return Number(o.$number);
  if (Array.isArray(o.$map)) {
    return new Map((o.$map as [string, Encoded][]).map(([k, x]) => [k, decodeTree(x, tensors)]));
  }
  const out: Record<string, StateTree> = {};
  for (const [k, x] of Object.entries(o)) out[k] = decodeTree(x, tensors);
  return out;
}

/* ------------------------------------------------------------------ */
/* checkpoints                                                         */

export interface CheckpointData {
  /** Optimizer steps completed. Names the folder: checkpoint-<step>. */
  step: number;
  /** Trainable parameters. */
  params: Map<string, Float32Array>;
  /** e.g. `AdamW.stateDict()`. */
  optimizer?: StateTree | object;
  /** A generator state, or several by name. */
  rng?: RngState | Record<string, RngState>;
  /** Loop state: epoch, position, best metric, history ... */
  trainer?: StateTree | object;
  /** Optional extra weights, e.g. the best-validation parameters. */
  best?: Map<string, Float32Array>;
}

export interface LoadedCheckpoint {
  step: number;
  /** The checkpoint folder. */
  path: string;
  params: Map<string, Float32Array>;
  optimizer?: StateTree;
  rng?: RngState | Record<string, RngState>;
  trainer?: StateTree;
  best?: Map<string, Float32Array>;
  savedAt: string;
  /** Set by loadLatestCheckpoint when it could not use what `latest` names. */
  warnings?: string[];
}

export interface SaveOptions {
  /** Keep only the newest K checkpoints (default 3; 0 or Infinity keeps all). */
  keepLast?: number;
}

const FORMAT = "lorakit-checkpoint";
const VERSION = 1;
const TENSORS_FILE = "tensors.safetensors";
const STATE_FILE = "state.json";
const LATEST_FILE = "latest";
const TMP_PREFIX = ".tmp-ckpt-";
const CKPT_RE = /^checkpoint-(\d+)$/;

export function checkpointName(step: number): string {
  return `checkpoint-${step}`;
}

/** Checkpoint folders in `dir`, oldest first (by step). */
export function listCheckpoints(dir: string): { step: number; path: string }[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw e;
  }
  return names
    .map((n) => ({ n, m: CKPT_RE.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
    .map(({ n, m }) => ({ step: Number(m[1]), path: path.join(dir, n) }))
    .filter((c) => fs.statSync(c.path).isDirectory())
    .sort((a, b) => a.step - b.step);
}

/**
 * Saves a checkpoint atomically into `dir/checkpoint-<step>` and points
 * `dir/latest` at it; prunes to the newest `keepLast`. Returns the folder.
 * Saving the same step again replaces that checkpoint.
 */
export async function saveCheckpoint(dir: string, data: CheckpointData, opts: SaveOptions = {}): Promise<string> {
  return saveCheckpointSync(dir, data, opts);
}

/** Synchronous {@link saveCheckpoint}. */
export function saveCheckpointSync(dir: string, data: CheckpointData, opts: SaveOptions = {}): string {
  if (!Number.isSafeInteger(data.step) || data.step < 0) throw new RangeError(`saveCheckpoint: step must be an integer >= 0, got ${data.step}`);
  fs.mkdirSync(dir, { recursive: true });
  removeStaleTemps(dir);

  const sink = new TensorSink();
  const paramNames: string[] = [];
  for (const [name, t] of data.params) {
    if (!(t instanceof Float32Array)) throw new TypeError(`saveCheckpoint: parameter "${name}" is not a Float32Array`);
    paramNames.push(name);
    sink.tensors.set(`params/${name}`, { dtype: "F32", shape: [t.length], data: t });
  }
  const encoded = {
    optimizer: data.optimizer === undefined ? undefined : encodeTree(data.optimizer, sink, "optimizer"),
    rng: data.rng === undefined ? undefined : encodeTree(data.rng, sink, "rng"),
    trainer: data.trainer === undefined ? undefined : encodeTree(data.trainer, sink, "trainer"),
    best: data.best === undefined ? undefined : encodeTree(data.best, sink, "best"),
  };

  const bin = serializeSafetensors(sink.tensors, { format: FORMAT, step: String(data.step) });
  const state = {
    format: FORMAT,
    version: VERSION,
    step: data.step,
    savedAt: new Date().toISOString(),
    tensorsFile: TENSORS_FILE,
    tensorsBytes: bin.length,
    tensorsSha256: createHash("sha256").update(bin).digest("hex"),
    params: paramNames,
    ...encoded,
  };

  const tmp = path.join(dir, `${TMP_PREFIX}${process.pid}-${randomBytes(6).toString("hex")}`);
  const final = path.join(dir, checkpointName(data.step));
  try {
    fs.mkdirSync(tmp);
    writeFileSynced(path.join(tmp, TENSORS_FILE), bin);
    writeFileSynced(path.join(tmp, STATE_FILE), JSON.stringify(state));
    fsyncDir(tmp);
    faultPoint("checkpoint:written");
    if (fs.existsSync(final)) {
      // Re-saving a step: move the old one aside first (a folder cannot be
      // renamed over a non-empty one). Until `latest` is rewritten the loader
      // falls back to the newest loadable checkpoint.
      const old = path.join(dir, `${TMP_PREFIX}old-${randomBytes(6).toString("hex")}`);
      fs.renameSync(final, old);
      fs.renameSync(tmp, final);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(tmp, final);
    }
    fsyncDir(dir);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw new CheckpointError(final, `could not be written (${describeError(e)}); nothing of it was kept. ${previousNote(dir)}`, { cause: e });
  }
  faultPoint("checkpoint:renamed");
  try {
    writeFileAtomic(path.join(dir, LATEST_FILE), `${checkpointName(data.step)}\n`);
  } catch (e) {
    throw new CheckpointError(final, `was written, but ${path.join(dir, LATEST_FILE)} could not be updated (${describeError(e)}). ${previousNote(dir)}`, { cause: e });
  }
  faultPoint("checkpoint:latest");
  prune(dir, opts.keepLast ?? 3, data.step);
  return final;
}

function describeError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === "ENOSPC" ? `the disk is full: ${(e as Error).message}` : (e as Error).message;
}

/** What a failed save leaves to resume from (the newest checkpoint that loads), for its error message. */
function previousNote(dir: string): string {
  let prev: LoadedCheckpoint | null = null;
  try {
    prev = loadLatestCheckpointSync(dir);
  } catch {
    prev = null;
  }
  return prev
    ? `The previous checkpoint ${prev.path} (step ${prev.step}) is intact and loads: free some space, then continue with --resume.`
    : "There is no earlier checkpoint to resume from: free some space and start again.";
}

function removeStaleTemps(dir: string): void {
  for (const n of fs.readdirSync(dir)) {
    if (n.startsWith(TMP_PREFIX)) fs.rmSync(path.join(dir, n), { recursive: true, force: true });
  }
}

function prune(dir: string, keepLast: number, justSaved: number): void {
  if (!(keepLast >= 1) || !Number.isFinite(keepLast)) return;
  const all = listCheckpoints(dir);
  const keep = new Set(all.slice(-keepLast).map((c) => c.step));
  keep.add(justSaved);
  for (const c of all) {
    if (keep.has(c.step)) continue;
    // state.json goes first: a deletion cut short leaves a folder the loader rejects, never a torn checkpoint it reads.
    fs.rmSync(path.join(c.path, STATE_FILE), { force: true });
    faultPoint("checkpoint:pruning");
    fs.rmSync(c.path, { recursive: true, force: true });
  }
}

export class CheckpointError extends Error {
  constructor(
    readonly checkpoint: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${checkpoint}: ${problem}`, options);
    this.name = "CheckpointError";
  }
}

/** Loads one checkpoint folder; verifies format, sizes and the sha256 of the tensors. */
export function loadCheckpoint(ckptDir: string): LoadedCheckpoint {
  const fail = (p: string) => new CheckpointError(ckptDir, p);
  let stateText: string;
  try {
    stateText = fs.readFileSync(path.join(ckptDir, STATE_FILE), "utf8");
  } catch (e) {
    throw fail(`cannot read ${STATE_FILE} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let st: Record<string, unknown>;
  try {
    st = JSON.parse(stateText) as Record<string, unknown>;
  } catch (e) {
    throw fail(`${STATE_FILE} is not valid JSON (${(e as Error).message})`);
  }
  if (st.format !== FORMAT) throw fail(`not a lorakit checkpoint (format ${JSON.stringify(st.format)})`);
  if (st.version !== VERSION) throw fail(`checkpoint format version ${String(st.version)} is not supported (this lorakit reads ${VERSION})`);
  let bin: Buffer;
  try {
    bin = fs.readFileSync(path.join(ckptDir, String(st.tensorsFile)));
  } catch (e) {
    throw fail(`cannot read ${String(st.tensorsFile)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (bin.length !== st.tensorsBytes) throw fail(`${String(st.tensorsFile)} has ${bin.length} bytes, expected ${String(st.tensorsBytes)}`);
  const sha = createHash("sha256").update(bin).digest("hex");
  if (sha !== st.tensorsSha256) throw fail(`${String(st.tensorsFile)} is corrupt (sha256 mismatch)`);

  const tensors = new Map<string, Float32Array>();
  try {
    for (const [name, t] of parseSafetensors(bin, path.join(ckptDir, String(st.tensorsFile))).tensors) {
      if (!(t.data instanceof Float32Array)) throw fail(`tensor ${name} is ${t.dtype}, expected F32`);
      tensors.set(name, t.data);
    }
  } catch (e) {
    if (e instanceof CheckpointError) throw e;
    throw fail((e as Error).message);
  }
  const params = new Map<string, Float32Array>();
  for (const name of st.params as string[]) {
    const t = tensors.get(`params/${name}`);
    if (!t) throw fail(`parameter ${name} is missing from ${String(st.tensorsFile)}`);
    params.set(name, t);
  }
  const out: LoadedCheckpoint = {
    step: st.step as number,
    path: ckptDir,
    params,
    savedAt: String(st.savedAt),
  };
  if (st.optimizer !== undefined) out.optimizer = decodeTree(st.optimizer, tensors);
  if (st.rng !== undefined) out.rng = decodeTree(st.rng, tensors) as unknown as RngState | Record<string, RngState>;
  if (st.trainer !== undefined) out.trainer = decodeTree(st.trainer, tensors);
  if (st.best !== undefined) out.best = decodeTree(st.best, tensors) as Map<string, Float32Array>;
  return out;
}

/**
 * Loads the checkpoint `dir/latest` names; if that is missing or broken, the
 * newest checkpoint folder that loads. Returns null when there is none.
 * Leftover `.tmp-ckpt-*` folders from an interrupted save are ignored.
 */
export async function loadLatestCheckpoint(dir: string): Promise<LoadedCheckpoint | null> {
  return loadLatestCheckpointSync(dir);
}

/** Synchronous {@link loadLatestCheckpoint}. */
export function loadLatestCheckpointSync(dir: string): LoadedCheckpoint | null {
  const warnings: string[] = [];
  let pointed: string | undefined;
  try {
    const name = fs.readFileSync(path.join(dir, LATEST_FILE), "utf8").trim();
    if (CKPT_RE.test(name)) pointed = path.join(dir, name);
    else warnings.push(`${path.join(dir, LATEST_FILE)} does not name a checkpoint: ${JSON.stringify(name.slice(0, 80))}`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (pointed) {
    try {
      return loadCheckpoint(pointed);
    } catch (e) {
      warnings.push(`latest checkpoint unusable: ${(e as Error).message}`);
    }
  }
  for (const c of listCheckpoints(dir).reverse()) {
    if (c.path === pointed) continue;
    try {
      const ck = loadCheckpoint(c.path);
      if (warnings.length) ck.warnings = warnings;
      return ck;
    } catch (e) {
      warnings.push((e as Error).message);
    }
  }
  return null;
}
