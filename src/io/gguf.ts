// GGUF version 3, the file llama.cpp loads (ggml's gguf.h / gguf-py): the magic
// "GGUF", the version, the tensor and key-value counts (u64), the key-values
// (string key, u32 type, value; arrays carry an item type and a u64 count),
// one info per tensor (name, rank, dims innermost first, ggml type, offset into
// the data section), padding to `general.alignment` (32 unless the file says
// otherwise), then each tensor's bytes at its aligned offset. Little-endian.
// Tensors are F32 or F16 here (what an unquantized export needs).

import fs from 'node:fs';
import { FileFormatError } from '../util/errors.ts';
import { writeFileAtomic } from './atomic.ts';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** gguf_type codes. */
const TYPE_CODE = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
export type GgufScalarType = Exclude<keyof typeof TYPE_CODE, 'array'>;
const TYPE_NAME = Object.fromEntries(Object.entries(TYPE_CODE).map(([k, v]) => [v, k])) as Record<number, keyof typeof TYPE_CODE>;
type Scalar = number | bigint | boolean | string;

export type GgufValue =
  | { type: GgufScalarType; value: Scalar }
  | { type: 'array'; itemType: GgufScalarType; value: Scalar[] };

/** ggml_type codes of the tensor types written and read here. */
const GGML_TYPE = { F32: 0, F16: 1 } as const;
export type GgufDtype = keyof typeof GGML_TYPE;

/** A tensor to write: `shape` outermost first (PyTorch's order; GGUF stores it reversed), `data` row-major float32. */
export interface GgufTensorInput {
  name: string;
  shape: readonly number[];
  data: Float32Array;
  /** Default F32. */
  dtype?: GgufDtype;
}

export interface GgufTensorInfo {
  name: string;
  /** Outermost first (PyTorch's order). */
  shape: number[];
  dtype: GgufDtype;
  /** Bytes from the start of the data section. */
  offset: number;
}

export interface GgufFile {
  version: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute byte offset of the data section. */
  dataOffset: number;
  /** A tensor's values as float32 (F16 widened). */
  read(name: string): Float32Array;
}

export class GgufError extends FileFormatError {
  constructor(file: string, problem: string) {
    super(file, problem);
    this.name = 'GgufError';
  }
}

/** Shorthands for metadata values. */
export const gguf = {
  str: (value: string): GgufValue => ({ type: 'string', value }),
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  arr: (itemType: GgufScalarType, value: Scalar[]): GgufValue => ({ type: 'array', itemType, value }),
};

// ---- float16 (IEEE binary16, round to nearest even: what numpy's astype(float16) gives) ----

const f32Buf = new Float32Array(1), u32Buf = new Uint32Array(f32Buf.buffer);

export function toFloat16Bits(x: number): number {
  f32Buf[0] = x;
  const u = u32Buf[0];
  const sign = (u >>> 16) & 0x8000, exp = (u >>> 23) & 0xff, man = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    const m = man | 0x800000, shift = 14 - e;
    let h = m >>> shift;
    const rest = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++; // may carry into the exponent: still correct (up to inf)
  return sign | h;
}

export function fromFloat16Bits(h: number): number {
  const sign = h & 0x8000 ? -1 : 1, exp = (h >>> 10) & 0x1f, man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

// ---- writing ----

class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;
  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }
  u32(v: number): void { this.room(4); this.buf.writeUInt32LE(v, this.length); this.length += 4; }
  u64(v: number | bigint): void { this.room(8); this.buf.writeBigUInt64LE(BigInt(v), this.length); this.length += 8; }
  bytes(b: Uint8Array): void { this.room(b.length); this.buf.set(b, this.length); this.length += b.length; }
  string(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.bytes(b); }
  scalar(type: GgufScalarType, v: Scalar): void {
    this.room(8);
    const b = this.buf, o = this.length;
    switch (type) {
      case 'u8': b.writeUInt8(Number(v), o); this.length += 1; return;
      case 'i8': b.writeInt8(Number(v), o); this.length += 1; return;
      case 'u16': b.writeUInt16LE(Number(v), o); this.length += 2; return;
      case 'i16': b.writeInt16LE(Number(v), o); this.length += 2; return;
      case 'u32': b.writeUInt32LE(Number(v), o); this.length += 4; return;
      case 'i32': b.writeInt32LE(Number(v), o); this.length += 4; return;
      case 'f32': b.writeFloatLE(Number(v), o); this.length += 4; return;
      case 'bool': b.writeUInt8(v ? 1 : 0, o); this.length += 1; return;
      case 'u64': b.writeBigUInt64LE(BigInt(v), o); this.length += 8; return;
      case 'i64': b.writeBigInt64LE(BigInt(v), o); this.length += 8; return;
      case 'f64': b.writeDoubleLE(Number(v), o); this.length += 8; return;
      case 'string': this.string(String(v)); return;
    }
  }
  pad(alignment: number): void { const n = (alignment - (this.length % alignment)) % alignment; this.bytes(new Uint8Array(n)); }
  done(): Uint8Array { return this.buf.subarray(0, this.length); }
}

function tensorBytes(t: GgufTensorInput): Uint8Array {
  if ((t.dtype ?? 'F32') === 'F32') return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  const h = new Uint16Array(t.data.length);
  for (let i = 0; i < h.length; i++) h[i] = toFloat16Bits(t.data[i]);
  return new Uint8Array(h.buffer);
}

/** The file's bytes, as chunks in order (the header, then each tensor with its padding). */
export function serializeGguf(metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorInput[]): Uint8Array[] {
  const alignV = metadata.get('general.alignment');
  const alignment = alignV ? Number(alignV.value) : GGUF_DEFAULT_ALIGNMENT;
  if (!(Number.isInteger(alignment) && alignment > 0 && alignment % 8 === 0)) throw new Error(`GGUF: general.alignment must be a positive multiple of 8, got ${alignment}`);
  const names = new Set<string>();
  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(GGUF_VERSION);
  w.u64(tensors.length);
  w.u64(metadata.size);
  for (const [key, v] of metadata) {
    w.string(key);
    w.u32(TYPE_CODE[v.type]);
    if (v.type === 'array') {
      w.u32(TYPE_CODE[v.itemType]);
      w.u64(v.value.length);
      for (const x of v.value) w.scalar(v.itemType, x);
    } else w.scalar(v.type, v.value);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF: tensor '${t.name}' given twice`);
    names.add(t.name);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (n !== t.data.length) throw new Error(`GGUF: tensor '${t.name}' has ${t.data.length} values for shape [${t.shape}]`);
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) w.u64(d);
    w.u32(GGML_TYPE[t.dtype ?? 'F32']);
    w.u64(offset);
    const bytes = tensorBytes(t);
    const pad = (alignment - (bytes.length % alignment)) % alignment;
    chunks.push(bytes, new Uint8Array(pad));
    offset += bytes.length + pad;
  }
  w.pad(alignment);
  return [w.done(), ...chunks];
}

/** Writes a GGUF file atomically. */
export function writeGguf(file: string, metadata: ReadonlyMap<string, GgufValue>, tensors: readonly GgufTensorInput[]): number {
  const chunks = serializeGguf(metadata, tensors);
  writeFileAtomic(file, chunks);
  return chunks.reduce((s, c) => s + c.length, 0);
}

// ---- reading ----

class ByteReader {
  pos = 0;
  constructor(readonly b: Buffer, readonly file: string) {}
  need(n: number, what: string): void {
    if (this.pos + n > this.b.length) throw new GgufError(this.file, `truncated: ${what} at byte ${this.pos} runs past the end of the file (${this.b.length} bytes); the file is incomplete or not GGUF — export it again`);
  }
  u32(what: string): number { this.need(4, what); const v = this.b.readUInt32LE(this.pos); this.pos += 4; return v; }
  u64(what: string): number {
    this.need(8, what);
    const v = this.b.readBigUInt64LE(this.pos);
    this.pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufError(this.file, `corrupt: ${what} is ${v} at byte ${this.pos - 8}`);
    return Number(v);
  }
  string(what: string): string {
    const n = this.u64(`${what} length`);
    this.need(n, what);
    const s = this.b.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }
  scalar(type: GgufScalarType, what: string): Scalar {
    const size = { u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8, string: 0 }[type];
    if (type === 'string') return this.string(what);
    this.need(size, what);
    const b = this.b, o = this.pos;
    this.pos += size;
    switch (type) {
      case 'u8': return b.readUInt8(o);
      case 'i8': return b.readInt8(o);
      case 'bool': { const v = b.readUInt8(o); if (v > 1) throw new GgufError(this.file, `corrupt: ${what} is a bool of value ${v}`); return v === 1; }
      case 'u16': return b.readUInt16LE(o);
      case 'i16': return b.readInt16LE(o);
      case 'u32': return b.readUInt32LE(o);
      case 'i32': return b.readInt32LE(o);
      case 'f32': return b.readFloatLE(o);
      case 'u64': return b.readBigUInt64LE(o);
      case 'i64': return b.readBigInt64LE(o);
      case 'f64': return b.readDoubleLE(o);
    }
  }
  type(what: string): keyof typeof TYPE_CODE {
    const code = this.u32(what);
    const t = TYPE_NAME[code];
    if (t === undefined) throw new GgufError(this.file, `corrupt: ${what} has unknown type code ${code} at byte ${this.pos - 4}`);
    return t;
  }
}

/** Parses GGUF bytes (F32 / F16 tensors); a truncated or corrupt file is a GgufError naming what is wrong. */
export function parseGguf(bytes: Uint8Array, file = '<gguf>'): GgufFile {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new ByteReader(b, file);
  if (b.length < 4 || b.readUInt32LE(0) !== GGUF_MAGIC) throw new GgufError(file, 'not a GGUF file (the first four bytes are not "GGUF")');
  r.pos = 4;
  const version = r.u32('version');
  if (version !== 2 && version !== 3) throw new GgufError(file, `GGUF version ${version} is not supported (2 or 3)`);
  const nTensors = r.u64('tensor count'), nKv = r.u64('metadata count');
  // Each entry takes bytes: counts larger than the file are corruption, not a reason to allocate.
  if (nTensors > b.length || nKv > b.length) throw new GgufError(file, `corrupt: ${nTensors} tensors / ${nKv} metadata entries in a ${b.length}-byte file`);
  const metadata = new Map<string, GgufValue>();
  for (let i = 0; i < nKv; i++) {
    const key = r.string(`metadata key ${i}`);
    const type = r.type(`metadata '${key}'`);
    if (type === 'array') {
      const itemType = r.type(`metadata '${key}' item type`);
      if (itemType === 'array') throw new GgufError(file, `metadata '${key}': nested arrays are not supported`);
      const n = r.u64(`metadata '${key}' length`);
      if (n > b.length) throw new GgufError(file, `corrupt: metadata '${key}' claims ${n} items`);
      const value: Scalar[] = new Array(n);
      for (let j = 0; j < n; j++) value[j] = r.scalar(itemType, `metadata '${key}'[${j}]`);
      metadata.set(key, { type, itemType, value });
    } else metadata.set(key, { type, value: r.scalar(type, `metadata '${key}'`) });
  }
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = r.string(`tensor ${i} name`);
    const rank = r.u32(`tensor '${name}' rank`);
    if (rank < 1 || rank > 4) throw new GgufError(file, `corrupt: tensor '${name}' has rank ${rank} (ggml: 1..4)`);
    const dims: number[] = [];
    for (let d = 0; d < rank; d++) dims.push(r.u64(`tensor '${name}' dim ${d}`));
    const code = r.u32(`tensor '${name}' type`);
    const dtype = (Object.keys(GGML_TYPE) as GgufDtype[]).find((k) => GGML_TYPE[k] === code);
    if (!dtype) throw new GgufError(file, `tensor '${name}' has ggml type ${code}; this reader handles F32 (0) and F16 (1) only`);
    tensors.push({ name, shape: dims.reverse(), dtype, offset: r.u64(`tensor '${name}' offset`) });
  }
  const alignV = metadata.get('general.alignment');
  const alignment = alignV ? Number(alignV.value) : GGUF_DEFAULT_ALIGNMENT;
  if (!(Number.isInteger(alignment) && alignment > 0)) throw new GgufError(file, `corrupt: general.alignment is ${alignV?.value}`);
  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  const byName = new Map<string, GgufTensorInfo>();
  for (const t of tensors) {
    if (byName.has(t.name)) throw new GgufError(file, `corrupt: tensor '${t.name}' listed twice`);
    byName.set(t.name, t);
    const n = t.shape.reduce((a, c) => a * c, 1), size = n * (t.dtype === 'F32' ? 4 : 2);
    if (t.offset % alignment !== 0) throw new GgufError(file, `corrupt: tensor '${t.name}' offset ${t.offset} is not a multiple of the alignment ${alignment}`);
    if (dataOffset + t.offset + size > b.length) {
      throw new GgufError(file, `truncated: tensor '${t.name}' (${size} bytes at ${dataOffset + t.offset}) runs past the end of the file (${b.length} bytes); the file is incomplete — export it again`);
    }
  }
  return {
    version, metadata, tensors, alignment, dataOffset,
    read(name: string): Float32Array {
      const t = byName.get(name);
      if (!t) throw new GgufError(file, `no tensor '${name}'`);
      const n = t.shape.reduce((a, c) => a * c, 1), start = dataOffset + t.offset;
      const out = new Float32Array(n);
      if (t.dtype === 'F32') for (let i = 0; i < n; i++) out[i] = b.readFloatLE(start + 4 * i);
      else for (let i = 0; i < n; i++) out[i] = fromFloat16Bits(b.readUInt16LE(start + 2 * i));
      return out;
    },
  };
}

export function readGguf(file: string): GgufFile {
  return parseGguf(fs.readFileSync(file), file);
}
