/**
 * Weights of a TensorFlow.js graph model (model.json + binary shards), read
 * without tfjs.
 *
 * model.json's `weightsManifest` is a list of groups `{paths, weights}`. A
 * group's shard files, concatenated in `paths` order, hold its weights back to
 * back in `weights` order, little-endian, C order, no padding. This is what
 * tfjs's own loader does (io.loadWeights / decodeWeights).
 */
import { dirName, isAbsolutePath, kindOf, PATH_SEP, readBytesAsync, readText, resolvePath } from './files.ts';
import { FileFormatError } from '../util/errors.ts';

export type TfjsWeight = { shape: number[]; dtype: 'float32' | 'int32'; data: Float32Array | Int32Array };

export type TfjsWeights = { modelJson: any; weights: Map<string, TfjsWeight> };

export class TfjsWeightsError extends FileFormatError {
  constructor(file: string, problem: string) {
    super(file, problem);
    this.name = 'TfjsWeightsError';
  }
}

type ManifestWeight = { name: string; shape: number[]; dtype: string; quantization?: { dtype?: string } };
type ManifestGroup = { paths: string[]; weights: ManifestWeight[] };

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('lorakit tfjs: big-endian hosts are not supported'); // shards are little-endian
}

/** Loads every weight named in model.json's manifest from its shard files. */
export async function loadTfjsWeights(modelJsonPath: string): Promise<TfjsWeights> {
  const file = resolvePath(modelJsonPath);
  let modelJson: any;
  try {
    modelJson = JSON.parse(readText(file));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TfjsWeightsError(file, code === 'ENOENT' ? 'no such file' : `not a readable JSON model file (${(e as Error).message})`);
  }
  const dir = dirName(file);
  return decodeTfjsWeights(modelJson, (where, paths) => readGroup(file, dir, where, paths), file);
}

/**
 * The weights of a parsed model.json, its shard bytes read by `readShards`
 * (a manifest group's `paths`, concatenated): from files (loadTfjsWeights) or
 * over HTTP in a browser. `file` names the model in messages.
 */
export async function decodeTfjsWeights(
  modelJson: any,
  readShards: (where: string, paths: unknown[]) => Promise<Uint8Array>,
  file: string,
): Promise<TfjsWeights> {
  const manifest = modelJson?.weightsManifest as ManifestGroup[] | undefined;
  if (!Array.isArray(manifest)) {
    throw new TfjsWeightsError(file, 'has no "weightsManifest" array: not a tfjs graph/layers model.json');
  }

  const weights = new Map<string, TfjsWeight>();
  for (const [g, group] of manifest.entries()) {
    const where = `weightsManifest[${g}]`;
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw new TfjsWeightsError(file, `${where} must have "paths" and "weights" arrays`);
    }
    const specs = group.weights.map((w, i) => checkSpec(file, `${where}.weights[${i}]`, w));
    const needed = specs.reduce((sum, s) => sum + s.count * 4, 0);
    const bytes = await readShards(where, group.paths);
    if (bytes.length < needed) {
      throw new TfjsWeightsError(file, `${where} shards ${group.paths.join(', ')} hold ${bytes.length} bytes but its weights need ${needed}: a shard is truncated or from another model; copy the complete shard files next to model.json`);
    }
    let offset = 0;
    for (const s of specs) {
      const n = s.count * 4;
      // Copy into a fresh buffer: aligned for the typed array and independent of the shard buffer.
      const own = new Uint8Array(bytes.subarray(offset, offset + n)).buffer;
      const data = s.dtype === 'float32' ? new Float32Array(own) : new Int32Array(own);
      weights.set(s.name, { shape: s.shape, dtype: s.dtype, data });
      offset += n;
    }
  }
  return { modelJson, weights };
}

function checkSpec(file: string, where: string, w: ManifestWeight): { name: string; shape: number[]; dtype: 'float32' | 'int32'; count: number } {
  if (typeof w?.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new TfjsWeightsError(file, `${where} needs a string "name" and a "shape" of non-negative integers, got ${JSON.stringify(w)}`);
  }
  if (w.quantization) {
    // Quantized weights are stored as uint8/uint16/float16 with scale/min; not decoded here.
    throw new TfjsWeightsError(file, `weight "${w.name}" is quantized (${JSON.stringify(w.quantization)}); lorakit reads only unquantized float32/int32 weights: re-convert the model without --quantize_*`);
  }
  if (w.dtype !== 'float32' && w.dtype !== 'int32') {
    throw new TfjsWeightsError(file, `weight "${w.name}" has dtype ${JSON.stringify(w.dtype)}; lorakit reads only float32 and int32 weights`);
  }
  return { name: w.name, shape: [...w.shape], dtype: w.dtype, count: w.shape.reduce((a, b) => a * b, 1) };
}

/** A shard path is a non-empty relative path (tfjs resolves it against model.json's location). */
export function checkShardPath(file: string, where: string, i: number, p: unknown): string {
  if (typeof p !== 'string' || p === '' || isAbsolutePath(p)) {
    throw new TfjsWeightsError(file, `${where}.paths[${i}] = ${JSON.stringify(p)} is not a shard file name next to model.json`);
  }
  return p;
}

export function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function readGroup(file: string, dir: string, where: string, paths: unknown[]): Promise<Uint8Array> {
  // Shards are files next to model.json (tfjs resolves them relative to it): nothing outside the folder, no devices.
  for (const [i, p] of paths.entries()) {
    const full = resolvePath(dir, checkShardPath(file, where, i, p));
    if (!full.startsWith(dir + PATH_SEP)) throw new TfjsWeightsError(file, `${where}.paths[${i}] = ${JSON.stringify(p)} is not a shard file name next to model.json`);
    const kind = kindOf(full); // missing: reported below
    if (kind !== null && kind !== 'file') throw new TfjsWeightsError(file, `${where}.paths[${i}] = ${JSON.stringify(p)} is not a regular file`);
  }
  // Read in parallel, but report the first failing shard in manifest order, so the message does not depend on I/O timing.
  const reads = await Promise.allSettled(paths.map((p) => readBytesAsync(resolvePath(dir, p as string))));
  const parts = reads.map((r, i) => {
    const p = paths[i] as string;
    if (r.status === 'fulfilled') return r.value;
    const code = (r.reason as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'is missing' : `cannot be read (${code ?? (r.reason as Error).message})`;
    throw new TfjsWeightsError(file, `shard file "${p}" (${where}.paths[${i}]) ${why}; looked for ${resolvePath(dir, p)}. Copy all shard files listed in model.json next to it`);
  });
  return concatBytes(parts);
}
