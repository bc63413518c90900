// A quantized base saved beside its model (`lorakit quantize --model DIR
// --base-dtype int8|nf4|int4` writes DIR/lorakit-base.<dtype>.safetensors): a
// later load with that --base-dtype takes the codes and scales from it and never reads
// the float32 bytes of those weights, so the quantization is skipped and the
// whole float32 model is never resident.
//
// Beside the model, not a second model folder: the model keeps one identity
// (an adapter trained on the quantized base still names the fp32 folder as its
// base, the QLoRA workflow), and nothing else is duplicated.
//
// The file: per quantized weight (named as in the model's safetensors) one
// tensor '<name>:<part>' per array of its form, with its dtype and shape
// (QUANT_FORMATS[dtype].savedParts: int8 codes [in, out] and scales [out];
// nf4 packed codes and block absmax; int4 packed codes, tile scales and zero
// points); metadata with the format version, the dtype and its quantizer's
// settings, each weight's shape and layout, and the size and SHA-256 of every
// source weight file. A load checks them: a cache
// whose sources changed (stale), that cannot be read (corrupt) or whose shapes
// disagree is not used; the warning says why and how to rebuild it, and the
// load quantizes the weights itself.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { hfWeightFiles, type HfFolder, type TensorSource } from '../io/hf.ts';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../io/safetensors.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';
import { formFromArrays, QUANT_FORMATS, savedArraysOf, type SavedArray } from '../quant/formats.ts';
import { formStandIn, isStandIn, quantizedFormOf } from '../quant/quantized_weights.ts';
import type { LinearSite, WeightMap } from './types.ts';

const FORMAT = 'lorakit-quantized-base';
const VERSION = '1';

/** Where the saved quantized base of `dir` lives. */
export function baseCachePath(dir: string, dtype: BaseDtype): string {
  return path.join(dir, `lorakit-base.${dtype}.safetensors`);
}

interface SourceFile {
  file: string;
  bytes: number;
  sha256: string;
}

/** Size and SHA-256 of each weight file of the folder (read in chunks: nothing large stays in memory). */
function sourceFingerprint(dir: string): SourceFile[] {
  return hfWeightFiles(dir).map((f) => {
    const hash = crypto.createHash('sha256');
    const fd = fs.openSync(f, 'r');
    const chunk = Buffer.allocUnsafe(1 << 24);
    let bytes = 0;
    try {
      for (let n; (n = fs.readSync(fd, chunk, 0, chunk.length, bytes)) > 0; bytes += n) hash.update(chunk.subarray(0, n));
    } finally {
      fs.closeSync(fd);
    }
    return { file: path.basename(f), bytes, sha256: hash.digest('hex') };
  });
}

function rebuildHint(dir: string, dtype: BaseDtype): string {
  return `rebuild it with lorakit quantize --model ${dir} --base-dtype ${dtype}`;
}

/**
 * Writes the quantized weights of a model loaded with `dtype` (their float32
 * values dropped: src/quant/base_dtype.ts) beside its folder. Weights that
 * kept float32 values (a tied head) are quantized at each load, as before.
 */
export function saveBaseCache(folder: HfFolder, model: { sites: readonly LinearSite[]; weights: WeightMap }, dtype: BaseDtype): { file: string; weights: number; bytes: number } {
  if (dtype === 'fp32') throw new Error('lorakit quantize: fp32 is the model as it is; give the quantized form to save (int8, nf4 or int4)');
  const format = QUANT_FORMATS[dtype];
  const siteOf = new Map<Float32Array, LinearSite>();
  for (const s of model.sites) {
    const w = model.weights.get(s.weightKey);
    if (w && isStandIn(w.data)) siteOf.set(w.data, s);
  }
  const tensors = new Map<string, { dtype: 'I8' | 'U8' | 'F32'; shape: number[]; data: SavedArray }>();
  const entries: Record<string, { shape: number[]; layout: LinearSite['layout'] }> = {};
  for (const [name, t] of folder.weights) {
    const site = siteOf.get(t.data), f = quantizedFormOf(t.data);
    if (!site || f?.dtype !== dtype) continue;
    if (name.includes(':')) throw new Error(`lorakit quantize: tensor name '${name}' contains ':', which the saved form uses as a separator`);
    const arrays = savedArraysOf(f);
    for (const [part, spec] of Object.entries(format.savedParts(f.q.inFeatures, f.q.outFeatures))) {
      const data = arrays[part];
      if (data?.length !== spec.shape.reduce((x, y) => x * y, 1)) throw new Error(`lorakit quantize: the ${dtype} ${part} of '${name}' hold ${data?.length} values, [${spec.shape}] expected (a bug: please report it)`);
      tensors.set(`${name}:${part}`, { ...spec, data });
    }
    entries[name] = { shape: t.shape, layout: site.layout };
  }
  if (!tensors.size) throw new Error(`lorakit quantize: ${folder.dir} has no weight quantized as ${dtype} (no linear layers?)`);
  const file = baseCachePath(folder.dir, dtype);
  const metadata = { format: FORMAT, version: VERSION, base_dtype: dtype, settings: JSON.stringify(format.settings), sources: JSON.stringify(sourceFingerprint(folder.dir)), weights: JSON.stringify(entries) };
  writeSafetensors(file, tensors, metadata);
  return { file, weights: Object.keys(entries).length, bytes: fs.statSync(file).size };
}

/**
 * The saved quantized base of `dir`, checked against the folder's weight
 * files, as a TensorSource for the loader (each cached weight a stand-in
 * holding its codes); undefined when there is none, or with a warning when it
 * is stale or unreadable (the caller then quantizes at load).
 */
export function readBaseCache(dir: string, dtype: BaseDtype, warn: (m: string) => void): TensorSource | undefined {
  const file = baseCachePath(dir, dtype);
  if (dtype === 'fp32' || !fs.existsSync(file)) return undefined;
  const format = QUANT_FORMATS[dtype];
  const refuse = (why: string) => {
    warn(`${file}: ${why}; not used: quantizing at load instead (${rebuildHint(dir, dtype)})`);
    return undefined;
  };
  let meta: Record<string, string>;
  try {
    meta = readSafetensorsHeader(file).metadata;
  } catch (e) {
    return refuse(`unreadable (${(e as Error).message})`);
  }
  if (meta.format !== FORMAT || meta.version !== VERSION || meta.base_dtype !== dtype) return refuse(`not a version-${VERSION} ${dtype} quantized base (format ${meta.format}, version ${meta.version}, dtype ${meta.base_dtype})`);
  // int8 files written before the settings were recorded have none (int8 has none)
  const settings = JSON.stringify(format.settings);
  if ((meta.settings ?? '{}') !== settings) return refuse(`made with other ${dtype} settings (${meta.settings}) than this version uses (${settings})`);
  let saved: SourceFile[], entries: Record<string, { shape: number[]; layout: LinearSite['layout'] }>;
  try {
    saved = JSON.parse(meta.sources);
    entries = JSON.parse(meta.weights);
  } catch {
    return refuse('its metadata is not valid JSON');
  }
  const now = sourceFingerprint(dir);
  const key = (s: SourceFile[]) => JSON.stringify(s.map((f) => [f.file, f.bytes, f.sha256]));
  if (key(now) !== key(saved)) {
    const changed = now.filter((f) => !saved.some((g) => g.file === f.file && g.sha256 === f.sha256)).map((f) => f.file);
    return refuse(`stale: the model's weights changed since it was saved (${changed.join(', ') || 'weight files added or removed'})`);
  }
  const forms = new Map<string, { source: Float32Array | undefined; shape: number[]; make: () => Float32Array }>();
  try {
    const t = readSafetensors(file).tensors;
    for (const [name, e] of Object.entries(entries)) {
      const [inF, outF] = e.layout === 'out_in' ? [e.shape[1], e.shape[0]] : [e.shape[0], e.shape[1]];
      const arrays: Record<string, SavedArray> = {};
      for (const [part, spec] of Object.entries(format.savedParts(inF, outF))) {
        const got = t.get(`${name}:${part}`);
        if (!got) return refuse(`it holds no ${part} of '${name}'`);
        if (got.dtype !== spec.dtype || got.shape.join(',') !== spec.shape.join(',')) return refuse(`the saved ${part} of '${name}' (${got.dtype} [${got.shape}]) do not match its [${e.shape}] weight (${spec.dtype} [${spec.shape}] expected)`);
        arrays[part] = got.data as SavedArray;
      }
      const form = formFromArrays(dtype, arrays, inF, outF);
      forms.set(name, { source: undefined, shape: e.shape, make: () => formStandIn(form, e.layout) });
    }
  } catch (e) {
    return refuse(`unreadable (${(e as Error).message})`);
  }
  return (name, shape) => {
    const f = forms.get(name);
    if (!f) return undefined;
    if (f.shape.join(',') !== shape.join(',')) throw new Error(`${file}: '${name}' is saved as [${f.shape}] but the model has [${shape}] (the sources' hashes matched: the file was edited); delete it or ${rebuildHint(dir, dtype)}`);
    return (f.source ??= f.make());
  };
}
