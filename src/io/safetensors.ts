/**
 * safetensors read / write (https://github.com/huggingface/safetensors).
 *
 * Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {k: v}}`
 * padded with spaces to a multiple of 8, then the tensor bytes (little-endian,
 * C order). Offsets are relative to the start of the byte buffer.
 *
 * Reading validates like the reference Rust crate (contiguous ranges starting
 * at 0, byte sizes matching shape × dtype, data ending exactly at the end of
 * the file) and reports every problem as a `SafetensorsError` that names the
 * file, the problem and what to do about it.
 *
 * File I/O is synchronous: `readSafetensors` reads the header first, checks it
 * against the file size, then reads each tensor straight into its own typed
 * array (no whole-file buffer, so files larger than a Node Buffer still load).
 */
import { openRandomAccess, writeAtomic, type RandomAccessFile } from './files.ts';
import { FileFormatError } from '../util/errors.ts';

export type Dtype = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I8' | 'U8' | 'BOOL';

export type TypedData =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int8Array
  | Uint8Array
  | Uint16Array;

/**
 * One tensor. `data` holds: F32 Float32Array, F64 Float64Array, I64
 * BigInt64Array, I32 Int32Array, I8 Int8Array, U8 and BOOL Uint8Array, and
 * F16 / BF16 either upcast to Float32Array (dtype then reads 'F32' and
 * `sourceDtype` keeps the stored one) or, with `upcast: false`, the raw 16-bit
 * patterns in a Uint16Array.
 */
export type TensorData = {
  dtype: Dtype;
  shape: number[];
  data: TypedData;
  sourceDtype?: 'F16' | 'BF16';
};

/** What `serializeSafetensors` accepts: dtype defaults from the array type. */
export type TensorInput = { dtype?: Dtype; shape: readonly number[]; data: TypedData };

export type SafetensorsFile = { tensors: Map<string, TensorData>; metadata: Record<string, string> };

export type ReadOptions = {
  /** Convert F16 / BF16 to F32 (exact). Default true. */
  upcast?: boolean;
  /** readSafetensors: tensors whose bytes are not read (left out of the result): e.g. ones the caller has in another form. */
  skip?: (name: string, info: { dtype: Dtype; shape: number[] }) => boolean;
  /** readSafetensors: each tensor as it is read, before the next one (e.g. quantized at once, so the whole file is never resident). */
  map?: (name: string, tensor: TensorData) => TensorData;
};

export class SafetensorsError extends FileFormatError {
  constructor(file: string, problem: string) {
    super(file, problem);
    this.name = 'SafetensorsError';
  }
}

const DTYPE_SIZE: Record<Dtype, number> = {
  BOOL: 1, U8: 1, I8: 1, F16: 2, BF16: 2, I32: 4, F32: 4, F64: 8, I64: 8,
};

// Valid safetensors dtypes that lorakit does not decode: named separately so
// the error says "unsupported" rather than "corrupt".
const KNOWN_UNSUPPORTED = new Set(['I16', 'U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

// Serialization order of the reference crate: descending dtype (its enum is in
// increasing alignment order), then name. Keeps every tensor aligned.
const DTYPE_RANK: Record<Dtype, number> = {
  BOOL: 0, U8: 1, I8: 2, F16: 7, BF16: 8, I32: 9, F32: 11, F64: 12, I64: 13,
};

const MAX_HEADER_SIZE = 100_000_000; // same cap as the reference crate
const MODEL_HINT = 're-download or re-export the file';

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  // Typed arrays use host byte order; safetensors is little-endian.
  throw new Error('lorakit safetensors: big-endian hosts are not supported');
}

/* ------------------------------------------------------------------ */
/* half-precision conversions (exact upcast, round-to-nearest-even down) */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE binary16 bit pattern → number (exact). */
export function f16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) {
    u32Scratch[0] = ((h & 0x8000) << 16) | 0x7f800000 | (frac << 13); // inf / NaN, payload kept
    return f32Scratch[0];
  }
  return sign * (1024 + frac) * 2 ** (exp - 25);
}

/** bfloat16 bit pattern → number (exact: bf16 is the top half of an f32). */
export function bf16BitsToNumber(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0];
}

/** number → IEEE binary16 bits, rounding to nearest even (as numpy / torch). */
export function numberToF16Bits(x: number): number {
  f32Scratch[0] = x; // round to f32 first, as casting an f32 tensor does
  const b = u32Scratch[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // carry may roll into exponent / inf: correct
  return h;
}

/** number → bfloat16 bits, rounding to nearest even. */
export function numberToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  const b = u32Scratch[0];
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return ((b >>> 16) & 0x8000) | 0x7fc0;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

let f16Lut: Float32Array | undefined;
function f16Table(): Float32Array {
  if (!f16Lut) {
    f16Lut = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Lut[h] = f16BitsToNumber(h);
  }
  return f16Lut;
}

function upcastHalf(bits: Uint16Array, dtype: 'F16' | 'BF16'): Float32Array {
  const out = new Float32Array(bits.length);
  if (dtype === 'BF16') {
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) u[i] = bits[i] << 16;
  } else {
    const table = f16Table();
    for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  }
  return out;
}

/* ------------------------------------------------------------------ */
/* header parsing and validation                                        */

type Entry = { name: string; dtype: Dtype; shape: number[]; begin: number; end: number };
type Header = { entries: Entry[]; metadata: Record<string, string>; dataStart: number };

function isIndex(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Reads the 8-byte length prefix; `fileLength` is the whole file's size. */
function headerLength(prefix: Uint8Array, fileLength: number, source: string): number {
  if (fileLength < 8) {
    throw new SafetensorsError(source, `file is ${fileLength} bytes, shorter than the 8-byte header length prefix: not a safetensors file, or an empty / interrupted download; ${MODEL_HINT}`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) {
    throw new SafetensorsError(source, `header length prefix says ${n} bytes, over the 100 MB limit: the first 8 bytes are not a safetensors header (wrong file type or corrupt); ${MODEL_HINT}`);
  }
  const len = Number(n);
  if (8 + len > fileLength) {
    throw new SafetensorsError(source, `header length prefix says ${len} bytes but the file has only ${fileLength - 8} bytes after the prefix: the file is truncated or not a safetensors file; ${MODEL_HINT}`);
  }
  return len;
}

function parseHeaderJson(bytes: Uint8Array, dataLength: number, source: string): Omit<Header, 'dataStart'> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new SafetensorsError(source, `header (${bytes.length} bytes) is not valid UTF-8: the header is corrupt; ${MODEL_HINT}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(source, `header is not valid JSON (${(e as Error).message}); starts with ${JSON.stringify(text.slice(0, 60))}: the header is corrupt; ${MODEL_HINT}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SafetensorsError(source, `header JSON must be an object mapping tensor names to {dtype, shape, data_offsets}, got ${Array.isArray(json) ? 'an array' : typeof json}; ${MODEL_HINT}`);
  }

  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (info === null) continue;
      if (typeof info !== 'object' || Array.isArray(info)) {
        throw new SafetensorsError(source, `"__metadata__" must be an object of string values, got ${JSON.stringify(info)}; ${MODEL_HINT}`);
      }
      for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
        if (typeof v !== 'string') {
          throw new SafetensorsError(source, `"__metadata__" value for key "${k}" must be a string, got ${JSON.stringify(v)}; ${MODEL_HINT}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    entries.push(parseEntry(name, info, source));
  }

  // The reference crate accepts any key order but requires the ranges,
  // sorted, to tile [0, dataLength) exactly.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let prev: Entry | undefined;
  for (const t of sorted) {
    if (t.begin < cursor) {
      throw new SafetensorsError(source, `tensor "${t.name}" bytes [${t.begin}, ${t.end}) overlap tensor "${prev!.name}" [${prev!.begin}, ${prev!.end}): the header is corrupt; ${MODEL_HINT}`);
    }
    if (t.begin > cursor) {
      throw new SafetensorsError(source, `tensor "${t.name}" starts at byte ${t.begin} but the previous tensor${prev ? ` "${prev.name}"` : ''} ends at ${cursor}: ranges must be contiguous with no gaps; the header is corrupt; ${MODEL_HINT}`);
    }
    cursor = t.end;
    prev = t;
  }
  if (cursor > dataLength) {
    const last = prev!;
    throw new SafetensorsError(source, `file is truncated: the header describes ${cursor} bytes of tensor data but only ${dataLength} are present (tensor "${last.name}" needs bytes [${last.begin}, ${last.end})). The download or write probably stopped early; ${MODEL_HINT}`);
  }
  if (cursor < dataLength) {
    throw new SafetensorsError(source, `file has ${dataLength - cursor} unexpected bytes after the last tensor (header describes ${cursor} bytes of data, file holds ${dataLength}): the header does not match the data; ${MODEL_HINT}`);
  }
  return { entries, metadata };
}

function parseEntry(name: string, info: unknown, source: string): Entry {
  const where = `tensor "${name}"`;
  if (info === null || typeof info !== 'object' || Array.isArray(info)) {
    throw new SafetensorsError(source, `${where}: header entry must be an object {dtype, shape, data_offsets}, got ${JSON.stringify(info)}; ${MODEL_HINT}`);
  }
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_SIZE)) {
    const why = typeof dtype === 'string' && KNOWN_UNSUPPORTED.has(dtype)
      ? `dtype ${dtype} is valid safetensors but not supported by lorakit; convert the tensor to one of ${Object.keys(DTYPE_SIZE).join(', ')}`
      : `unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_SIZE).join(', ')}); the header is corrupt or from an unsupported writer`;
    throw new SafetensorsError(source, `${where}: ${why}`);
  }
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    throw new SafetensorsError(source, `${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}; ${MODEL_HINT}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isIndex)) {
    throw new SafetensorsError(source, `${where}: data_offsets must be [begin, end] non-negative integers, got ${JSON.stringify(offsets)}; ${MODEL_HINT}`);
  }
  const [begin, end] = offsets as number[];
  if (end < begin) {
    throw new SafetensorsError(source, `${where}: data_offsets [${begin}, ${end}] end before they begin; ${MODEL_HINT}`);
  }
  let count = 1;
  for (const d of shape as number[]) count *= d;
  const nbytes = count * DTYPE_SIZE[dtype as Dtype];
  if (!Number.isSafeInteger(nbytes)) {
    throw new SafetensorsError(source, `${where}: shape ${JSON.stringify(shape)} is too large to address; ${MODEL_HINT}`);
  }
  if (nbytes !== end - begin) {
    throw new SafetensorsError(source, `${where}: shape ${JSON.stringify(shape)} × ${dtype} (${DTYPE_SIZE[dtype as Dtype]} bytes) = ${nbytes} bytes, but data_offsets [${begin}, ${end}] span ${end - begin}; the header is inconsistent; ${MODEL_HINT}`);
  }
  return { name, dtype: dtype as Dtype, shape: shape as number[], begin, end };
}

function readHeaderFromBuffer(buf: Uint8Array, source: string): Header {
  const len = headerLength(buf, buf.length, source);
  const dataStart = 8 + len;
  const parsed = parseHeaderJson(buf.subarray(8, dataStart), buf.length - dataStart, source);
  return { ...parsed, dataStart };
}

/* ------------------------------------------------------------------ */
/* decoding                                                             */

/** `bytes` must own a fresh, aligned ArrayBuffer region of exactly the tensor size. */
function decode(e: Entry, bytes: Uint8Array, upcast: boolean): TensorData {
  const { buffer, byteOffset } = bytes;
  const n = e.shape.reduce((a, b) => a * b, 1);
  switch (e.dtype) {
    case 'F32': return { dtype: 'F32', shape: e.shape, data: new Float32Array(buffer, byteOffset, n) };
    case 'F64': return { dtype: 'F64', shape: e.shape, data: new Float64Array(buffer, byteOffset, n) };
    case 'I64': return { dtype: 'I64', shape: e.shape, data: new BigInt64Array(buffer, byteOffset, n) };
    case 'I32': return { dtype: 'I32', shape: e.shape, data: new Int32Array(buffer, byteOffset, n) };
    case 'I8': return { dtype: 'I8', shape: e.shape, data: new Int8Array(buffer, byteOffset, n) };
    case 'U8':
    case 'BOOL': return { dtype: e.dtype, shape: e.shape, data: bytes };
    case 'F16':
    case 'BF16': {
      const bits = new Uint16Array(buffer, byteOffset, n);
      return upcast
        ? { dtype: 'F32', shape: e.shape, data: upcastHalf(bits, e.dtype), sourceDtype: e.dtype }
        : { dtype: e.dtype, shape: e.shape, data: bits };
    }
  }
}

/** Parses a whole safetensors file held in memory. Tensor data is copied. */
export function parseSafetensors(buf: Uint8Array, source = '<buffer>', opts: ReadOptions = {}): SafetensorsFile {
  const upcast = opts.upcast ?? true;
  const h = readHeaderFromBuffer(buf, source);
  const tensors = new Map<string, TensorData>();
  for (const e of h.entries) {
    // Copy into a fresh ArrayBuffer: aligned for typed arrays and not aliasing
    // the caller's buffer (Buffer#slice would alias, hence new Uint8Array).
    const bytes = allocate(source, e, () => new Uint8Array(buf.subarray(h.dataStart + e.begin, h.dataStart + e.end)));
    tensors.set(e.name, allocate(source, e, () => decode(e, bytes, upcast)));
  }
  return { tensors, metadata: h.metadata };
}

/** Runs an allocation, turning an out-of-memory RangeError into a SafetensorsError. */
function allocate<T>(source: string, e: Entry, make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
    throw new SafetensorsError(source, `tensor "${e.name}" (${e.dtype} ${JSON.stringify(e.shape)}, ${e.end - e.begin} bytes) could not be allocated (${err.message}): not enough memory for this file`);
  }
}

function readExactly(fd: RandomAccessFile, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.length) {
    const n = fd.read(into.subarray(done), position + done);
    if (n === 0) {
      throw new SafetensorsError(file, `file ended while reading bytes ${position + done}..${position + into.length}: it was truncated or changed while being read; ${MODEL_HINT}`);
    }
    done += n;
  }
}

function readHeaderFromFd(fd: RandomAccessFile, file: string): Header {
  const size = fd.size;
  const prefix = new Uint8Array(Math.min(8, size));
  readExactly(fd, prefix, 0, file);
  const len = headerLength(prefix, size, file);
  const headerBytes = new Uint8Array(len);
  readExactly(fd, headerBytes, 8, file);
  return { ...parseHeaderJson(headerBytes, size - 8 - len, file), dataStart: 8 + len };
}

/** Reads only the header: names, dtypes, shapes and metadata, no tensor data. */
export function readSafetensorsHeader(file: string): { tensors: Map<string, { dtype: Dtype; shape: number[] }>; metadata: Record<string, string> } {
  const fd = openForRead(file);
  try {
    const h = readHeaderFromFd(fd, file);
    return { tensors: new Map(h.entries.map((e) => [e.name, { dtype: e.dtype, shape: e.shape }])), metadata: h.metadata };
  } finally {
    fd.close();
  }
}

/** Reads a safetensors file (synchronously), tensor by tensor. */
export function readSafetensors(file: string, opts: ReadOptions = {}): SafetensorsFile {
  const upcast = opts.upcast ?? true;
  const fd = openForRead(file);
  try {
    const h = readHeaderFromFd(fd, file);
    const tensors = new Map<string, TensorData>();
    for (const e of h.entries) {
      if (opts.skip?.(e.name, { dtype: e.dtype, shape: e.shape })) continue;
      const bytes = allocate(file, e, () => new Uint8Array(e.end - e.begin));
      readExactly(fd, bytes, h.dataStart + e.begin, file);
      const t = allocate(file, e, () => decode(e, bytes, upcast));
      tensors.set(e.name, opts.map ? opts.map(e.name, t) : t);
    }
    return { tensors, metadata: h.metadata };
  } finally {
    fd.close();
  }
}

function openForRead(file: string): RandomAccessFile {
  try {
    return openRandomAccess(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SafetensorsError(file, code === 'ENOENT' ? 'no such file' : `cannot open (${code ?? (e as Error).message})`);
  }
}

/* ------------------------------------------------------------------ */
/* serialization                                                        */

function defaultDtype(data: TypedData): Dtype | undefined {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof BigInt64Array) return 'I64';
  if (data instanceof Int32Array) return 'I32';
  if (data instanceof Int8Array) return 'I8';
  if (data instanceof Uint8Array) return 'U8';
  return undefined; // Uint16Array: F16 or BF16 bits, caller must say which
}

// Which array class carries each stored dtype (F16 / BF16: raw bits).
const ARRAY_FOR: Record<Dtype, new (n: number) => TypedData> = {
  F32: Float32Array, F64: Float64Array, I64: BigInt64Array, I32: Int32Array, I8: Int8Array,
  U8: Uint8Array, BOOL: Uint8Array, F16: Uint16Array, BF16: Uint16Array,
};

/** Little-endian bytes of one tensor as stored for `dtype`. */
function tensorBytes(name: string, t: TensorInput): { dtype: Dtype; bytes: Uint8Array } {
  const fail = (why: string) => new SafetensorsError('<serialize>', `tensor "${name}": ${why}`);
  const dtype = t.dtype ?? defaultDtype(t.data);
  if (!dtype) throw fail('a Uint16Array holds raw half-precision bits: pass dtype "F16" or "BF16"');
  if (!(dtype in DTYPE_SIZE)) throw fail(`unknown dtype ${JSON.stringify(dtype)} (expected one of ${Object.keys(DTYPE_SIZE).join(', ')})`);
  if (!Array.isArray(t.shape) || !t.shape.every(isIndex)) throw fail(`shape must be non-negative integers, got ${JSON.stringify(t.shape)}`);
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== n) throw fail(`shape ${JSON.stringify(t.shape)} has ${n} elements but data has ${t.data.length}`);
  const asBytes = (a: TypedData) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

  if ((dtype === 'F16' || dtype === 'BF16') && (t.data instanceof Float32Array || t.data instanceof Float64Array)) {
    const conv = dtype === 'F16' ? numberToF16Bits : numberToBf16Bits;
    const bits = new Uint16Array(n);
    for (let i = 0; i < n; i++) bits[i] = conv(t.data[i]);
    return { dtype, bytes: asBytes(bits) };
  }
  if (!(t.data instanceof ARRAY_FOR[dtype])) {
    const extra = dtype === 'F16' || dtype === 'BF16' ? ' (or a Float32Array / Float64Array to round)' : '';
    throw fail(`dtype ${dtype} needs a ${ARRAY_FOR[dtype].name}${extra}, got ${t.data.constructor.name}`);
  }
  return { dtype, bytes: asBytes(t.data) };
}

type Prepared = { header: Uint8Array; chunks: Uint8Array[]; total: number };

type Tensors = Map<string, TensorInput> | Record<string, TensorInput>;

const utf8 = new TextEncoder();

/** Byte-wise comparison (Rust's order for UTF-8 strings). */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function prepare(tensors: Tensors, metadata?: Record<string, string>): Prepared {
  const items = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).map(([name, t]) => {
    if (name === '__metadata__') throw new SafetensorsError('<serialize>', '"__metadata__" is reserved and cannot be a tensor name');
    return { name, shape: [...t.shape], ...tensorBytes(name, t) };
  });
  // Same order as the reference writer: larger alignment first, then by name
  // (byte-wise, as Rust compares strings). Every tensor stays aligned.
  const byteCmp = (a: string, b: string) => compareBytes(utf8.encode(a), utf8.encode(b));
  items.sort((a, b) => DTYPE_RANK[b.dtype] - DTYPE_RANK[a.dtype] || byteCmp(a.name, b.name));

  // Key order as the reference writer: "__metadata__" first, then tensors in
  // data order. Written by hand because JS objects put integer-like keys first.
  const parts: string[] = [];
  if (metadata) {
    const meta = Object.keys(metadata).sort(byteCmp).map((k) => {
      if (typeof metadata[k] !== 'string') throw new SafetensorsError('<serialize>', `metadata value for "${k}" must be a string, got ${typeof metadata[k]}`);
      return `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`;
    });
    parts.push(`"__metadata__":{${meta.join(',')}}`);
  }
  let offset = 0;
  for (const it of items) {
    const info = { dtype: it.dtype, shape: it.shape, data_offsets: [offset, offset + it.bytes.length] };
    parts.push(`${JSON.stringify(it.name)}:${JSON.stringify(info)}`);
    offset += it.bytes.length;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const headerLen = json.length + ((8 - (json.length % 8)) % 8); // pad with spaces to 8
  const head = new Uint8Array(8 + headerLen).fill(0x20, 8);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLen), true);
  head.set(json, 8);
  return { header: head, chunks: items.map((it) => it.bytes), total: head.length + offset };
}

/** Serializes tensors to safetensors bytes, byte-identical to the Python library for the same inputs. */
export function serializeSafetensors(tensors: Tensors, metadata?: Record<string, string>): Uint8Array {
  const p = prepare(tensors, metadata);
  const out = new Uint8Array(p.total);
  out.set(p.header);
  let at = p.header.length;
  for (const c of p.chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Writes a safetensors file atomically: a temporary file next to the target,
 * fsync, rename over the target, fsync the folder. A crash leaves either the
 * old file or the new one, never a torn file.
 */
export function writeSafetensors(file: string, tensors: Tensors, metadata?: Record<string, string>): void {
  const p = prepare(tensors, metadata);
  writeAtomic(file, [p.header, ...p.chunks]);
}
