import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import {
  SafetensorsError,
  bf16BitsToNumber,
  f16BitsToNumber,
  numberToBf16Bits,
  numberToF16Bits,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  serializeSafetensors,
  writeSafetensors,
  type TensorInput,
} from '../src/io/safetensors.ts';

const enc = new TextEncoder();

/** A file from a raw header string (padded to 8 like a real writer) and data bytes. */
function rawFile(header: string, data: Uint8Array = new Uint8Array(0), pad = true): Uint8Array {
  let h = enc.encode(header);
  if (pad && h.length % 8) h = enc.encode(header + ' '.repeat(8 - (h.length % 8)));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

function expectError(fn: () => unknown, ...patterns: RegExp[]): SafetensorsError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    for (const p of patterns) assert.match(e.message, p);
    return e;
  }
  assert.fail('expected a SafetensorsError, nothing was thrown');
}

function sample(): Record<string, TensorInput> {
  return {
    'w.f32': { shape: [2, 3], data: new Float32Array([1, -2, 3.5, 0, -0, 1e-30]) },
    'w.f64': { shape: [2], data: new Float64Array([Math.PI, -1e300]) },
    'w.i64': { shape: [3], data: new BigInt64Array([0n, -(2n ** 63n), 2n ** 63n - 1n]) },
    'w.i32': { shape: [1, 2], data: new Int32Array([-7, 2 ** 31 - 1]) },
    'w.i8': { shape: [3], data: new Int8Array([-128, 0, 127]) },
    'w.u8': { shape: [2], data: new Uint8Array([0, 255]) },
    'w.bool': { dtype: 'BOOL', shape: [3], data: new Uint8Array([1, 0, 1]) },
    'w.f16': { dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x7bff]) },
    'w.bf16': { dtype: 'BF16', shape: [1], data: new Uint16Array([0x4049]) },
    scalar: { shape: [], data: new Float32Array([42]) },
    empty: { shape: [0, 4], data: new Float32Array(0) },
  };
}

describe('safetensors byte format', () => {
  // Byte vectors from the reference Rust crate's own unit tests.
  test('matches reference serialization of a single F32 tensor', () => {
    const out = serializeSafetensors({ 'attn.0': { shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    assert.equal(header.length, 64);
    assert.deepEqual([...out.subarray(0, 8)], [64, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(new TextDecoder().decode(out.subarray(8, 72)), header);
    assert.deepEqual([...out.subarray(72)], [...new Uint8Array(new Float32Array([0, 1, 2, 3, 4, 5]).buffer)]);
  });

  test('pads the header with spaces to a multiple of 8', () => {
    const out = serializeSafetensors({ attn0: { shape: [1, 1, 2, 3], data: new Float32Array(6) } });
    assert.equal(out[0], 72);
    assert.equal(new TextDecoder().decode(out.subarray(8, 80)), '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       ');
  });

  test('empty file and metadata-only file', () => {
    assert.deepEqual([...serializeSafetensors({})], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
    const withMeta = serializeSafetensors({}, { framework: 'pt' });
    assert.equal(new TextDecoder().decode(withMeta.subarray(8)), '{"__metadata__":{"framework":"pt"}}     ');
    assert.deepEqual(parseSafetensors(withMeta).metadata, { framework: 'pt' });
  });

  test('orders tensors by dtype alignment then name, metadata first, every tensor aligned', () => {
    const out = serializeSafetensors(
      { b: { shape: [1], data: new Uint8Array(1) }, '10': { shape: [1], data: new Float32Array(1) }, a: { shape: [1], data: new Float64Array(1) }, '2': { shape: [1], data: new Float32Array(1) } },
      { z: '1', a: '2' },
    );
    const len = Number(new DataView(out.buffer).getBigUint64(0, true));
    const text = new TextDecoder().decode(out.subarray(8, 8 + len)).trimEnd();
    const keys = [...text.matchAll(/"([^"]+)":\{"(?:dtype|a)/g)].map((m) => m[1]);
    assert.deepEqual(keys, ['__metadata__', 'a', '10', '2', 'b']);
    assert.ok(text.startsWith('{"__metadata__":{"a":"2","z":"1"},"a":{"dtype":"F64"'));
    const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    for (const [k, v] of Object.entries(header)) {
      if (k === '__metadata__') continue;
      const size = { F64: 8, F32: 4, U8: 1 }[v.dtype]!;
      assert.equal((8 + len + v.data_offsets[0]) % size, 0, `${k} aligned`);
    }
  });
});

describe('safetensors round trip', () => {
  test('all dtypes through a buffer', () => {
    const input = sample();
    const { tensors, metadata } = parseSafetensors(serializeSafetensors(input, { format: 'pt', note: 'héllo ✓' }), 'mem', { upcast: false });
    assert.deepEqual(metadata, { format: 'pt', note: 'héllo ✓' });
    assert.deepEqual([...tensors.keys()].sort(), Object.keys(input).sort());
    for (const [name, t] of Object.entries(input)) {
      const got = tensors.get(name)!;
      assert.deepEqual(got.shape, t.shape, name);
      assert.equal(got.dtype, t.dtype ?? got.dtype, name);
      assert.equal(got.data.constructor, t.data.constructor, name);
      assert.deepEqual([...got.data as Iterable<unknown>], [...t.data as Iterable<unknown>], name);
    }
    assert.ok(Object.is((tensors.get('w.f32')!.data as Float32Array)[4], -0));
  });

  test('all dtypes through a file, atomically written', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-st-'));
    try {
      const file = path.join(dir, 'adapter.safetensors');
      fs.writeFileSync(file, 'old contents');
      writeSafetensors(file, new Map(Object.entries(sample())), { k: 'v' });
      assert.deepEqual(fs.readdirSync(dir), ['adapter.safetensors']);
      assert.deepEqual(fs.readFileSync(file), Buffer.from(serializeSafetensors(sample(), { k: 'v' })));
      const { tensors, metadata } = readSafetensors(file);
      assert.deepEqual(metadata, { k: 'v' });
      assert.deepEqual([...(tensors.get('w.f16')!.data as Float32Array)], [1, -2, 65504]);
      assert.equal(tensors.get('w.f16')!.dtype, 'F32');
      assert.equal(tensors.get('w.f16')!.sourceDtype, 'F16');
      assert.deepEqual([...(tensors.get('w.bf16')!.data as Float32Array)], [3.140625]);
      assert.deepEqual([...(tensors.get('w.i64')!.data as BigInt64Array)], [0n, -(2n ** 63n), 2n ** 63n - 1n]);
      const header = readSafetensorsHeader(file);
      assert.deepEqual(header.tensors.get('w.f32'), { dtype: 'F32', shape: [2, 3] });

      // A failed write leaves the old file untouched and no temporary behind.
      assert.throws(() => writeSafetensors(file, { bad: { shape: [5], data: new Float32Array(2) } }), SafetensorsError);
      assert.deepEqual(fs.readdirSync(dir), ['adapter.safetensors']);
      assert.equal(readSafetensors(file).tensors.size, Object.keys(sample()).length);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('parses from a pooled, unaligned Node Buffer without aliasing it', () => {
    const bytes = serializeSafetensors({ x: { shape: [2], data: new Float32Array([1.5, 2.5]) }, y: { shape: [1], data: new Uint8Array([3]) } });
    const backing = new Uint8Array(bytes.length + 3);
    backing.set(bytes, 3);
    const unaligned = backing.subarray(3);
    const { tensors } = parseSafetensors(unaligned);
    assert.deepEqual([...(tensors.get('x')!.data as Float32Array)], [1.5, 2.5]);
    backing.fill(0);
    assert.deepEqual([...(tensors.get('x')!.data as Float32Array)], [1.5, 2.5]);
  });

  test('downcasts Float32Array to F16 / BF16 on write', () => {
    const out = parseSafetensors(serializeSafetensors({
      h: { dtype: 'F16', shape: [3], data: new Float32Array([1, 0.1, 1e6]) },
      b: { dtype: 'BF16', shape: [2], data: new Float32Array([1, 0.1]) },
    }), 'mem', { upcast: false });
    assert.deepEqual([...(out.tensors.get('h')!.data as Uint16Array)], [0x3c00, 0x2e66, 0x7c00]);
    assert.deepEqual([...(out.tensors.get('b')!.data as Uint16Array)], [0x3f80, 0x3dcd]);
  });

  test('rejects inconsistent tensors on write', () => {
    expectError(() => serializeSafetensors({ x: { shape: [2, 2], data: new Float32Array(3) } }), /"x"/, /4 elements but data has 3/);
    expectError(() => serializeSafetensors({ x: { dtype: 'I32', shape: [1], data: new Float32Array(1) } }), /I32 needs a Int32Array, got Float32Array/);
    expectError(() => serializeSafetensors({ x: { shape: [1], data: new Uint16Array(1) } }), /pass dtype "F16" or "BF16"/);
    expectError(() => serializeSafetensors({ __metadata__: { shape: [1], data: new Uint8Array(1) } }), /reserved/);
  });
});

describe('half precision', () => {
  test('F16 bits to float32, hand-computed', () => {
    const cases: [number, number][] = [
      [0x0000, 0], [0x3c00, 1], [0xc000, -2], [0x3555, 0.333251953125], [0x7bff, 65504],
      [0x0400, 2 ** -14], [0x0001, 2 ** -24], [0x03ff, 1023 * 2 ** -24], [0x8001, -(2 ** -24)],
      [0x7c00, Infinity], [0xfc00, -Infinity], [0x4248, 3.140625],
    ];
    for (const [bits, value] of cases) assert.equal(f16BitsToNumber(bits), value, bits.toString(16));
    assert.ok(Object.is(f16BitsToNumber(0x8000), -0));
    assert.ok(Number.isNaN(f16BitsToNumber(0x7e00)) && Number.isNaN(f16BitsToNumber(0xfc01)));
  });

  test('BF16 bits to float32, hand-computed', () => {
    const cases: [number, number][] = [
      [0x3f80, 1], [0xc000, -2], [0x4049, 3.140625], [0xc2f7, -123.5], [0x0001, 2 ** -133],
      [0x7f7f, (2 - 2 ** -7) * 2 ** 127], [0x7f80, Infinity], [0xff80, -Infinity], [0x3dcd, 0.10009765625],
    ];
    for (const [bits, value] of cases) assert.equal(bf16BitsToNumber(bits), value, bits.toString(16));
    assert.ok(Number.isNaN(bf16BitsToNumber(0x7fc0)));
  });

  test('upcast in a file: F16 and BF16 become exact F32', () => {
    const bytes = serializeSafetensors({
      h: { dtype: 'F16', shape: [4], data: new Uint16Array([0x0001, 0x3555, 0xfc00, 0x8000]) },
      b: { dtype: 'BF16', shape: [2], data: new Uint16Array([0xc2f7, 0x0001]) },
    });
    const { tensors } = parseSafetensors(bytes);
    const h = tensors.get('h')!.data as Float32Array;
    assert.deepEqual([...h], [2 ** -24, 0.333251953125, -Infinity, -0]);
    assert.ok(Object.is(h[3], -0));
    assert.deepEqual([...(tensors.get('b')!.data as Float32Array)], [-123.5, 2 ** -133]);
  });

  test('F16 / BF16 round trip is the identity on every non-NaN pattern', () => {
    for (let h = 0; h < 65536; h++) {
      const f16NaN = (h & 0x7c00) === 0x7c00 && h & 0x3ff;
      const bf16NaN = (h & 0x7f80) === 0x7f80 && h & 0x7f;
      if (!f16NaN) assert.equal(numberToF16Bits(f16BitsToNumber(h)), h, `f16 ${h.toString(16)}`);
      if (!bf16NaN) assert.equal(numberToBf16Bits(bf16BitsToNumber(h)), h, `bf16 ${h.toString(16)}`);
    }
  });

  test('downcast rounds to nearest even', () => {
    assert.equal(numberToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even
    assert.equal(numberToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
    assert.equal(numberToF16Bits(1 + 2 ** -11 + 2 ** -20), 0x3c01);
    assert.equal(numberToF16Bits(65519), 0x7bff);
    assert.equal(numberToF16Bits(65520), 0x7c00);
    assert.equal(numberToF16Bits(2 ** -25), 0x0000); // tie between 0 and smallest subnormal
    assert.equal(numberToF16Bits(2 ** -25 * 1.5), 0x0001);
    assert.equal(numberToF16Bits(3 * 2 ** -25), 0x0002); // tie → even
    assert.equal(numberToF16Bits(2 ** -14 - 2 ** -25), 0x0400); // rounds up into the normals
    assert.equal(numberToF16Bits(-0), 0x8000);
    assert.equal(numberToF16Bits(NaN) & 0x7e00, 0x7e00);
    assert.equal(numberToBf16Bits(1 + 2 ** -8), 0x3f80);
    assert.equal(numberToBf16Bits(1 + 3 * 2 ** -8), 0x3f82);
    assert.equal(numberToBf16Bits(NaN), 0x7fc0);
  });
});

describe('safetensors corruption is always a clear SafetensorsError', () => {
  const good = serializeSafetensors(sample(), { format: 'pt' });

  test('file shorter than 8 bytes', () => {
    expectError(() => parseSafetensors(new Uint8Array(0), 'empty.safetensors'), /^empty\.safetensors: /, /0 bytes, shorter than the 8-byte/);
    expectError(() => parseSafetensors(good.subarray(0, 7), 'x.safetensors'), /7 bytes/);
  });

  test('header length larger than the file', () => {
    const bad = good.slice();
    new DataView(bad.buffer).setBigUint64(0, BigInt(good.length), true);
    expectError(() => parseSafetensors(bad, 'm.safetensors'), /^m\.safetensors: header length prefix says \d+ bytes but the file has only \d+/, /truncated/);
    new DataView(bad.buffer).setBigUint64(0, 2n ** 63n, true);
    expectError(() => parseSafetensors(bad, 'm.safetensors'), /over the 100 MB limit/);
  });

  test('header not JSON, not an object, not UTF-8', () => {
    const flipped = good.slice();
    flipped[8] = 'x'.charCodeAt(0);
    expectError(() => parseSafetensors(flipped, 'f'), /header is not valid JSON/, /"x/);
    expectError(() => parseSafetensors(rawFile('[1,2]'), 'f'), /must be an object .* got an array/);
    expectError(() => parseSafetensors(rawFile('"str"'), 'f'), /must be an object .* got string/);
    const bin = rawFile('{"a":1}');
    bin[10] = 0xff;
    expectError(() => parseSafetensors(bin, 'f'), /not valid UTF-8/);
  });

  test('bad entries: dtype, shape, offsets, metadata', () => {
    const d4 = new Uint8Array(4);
    expectError(() => parseSafetensors(rawFile('{"t":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}', d4), 'f'), /tensor "t": unknown dtype "F12"/);
    expectError(() => parseSafetensors(rawFile('{"t":{"dtype":"U16","shape":[2],"data_offsets":[0,4]}}', d4), 'f'), /U16 is valid safetensors but not supported/);
    expectError(() => parseSafetensors(rawFile('{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', d4), 'f'), /shape must be an array of non-negative integers/);
    expectError(() => parseSafetensors(rawFile('{"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}}', d4), 'f'), /data_offsets must be \[begin, end\]/);
    expectError(() => parseSafetensors(rawFile('{"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', d4), 'f'), /end before they begin/);
    expectError(() => parseSafetensors(rawFile('{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', d4), 'f'), /shape \[2\] × F32 \(4 bytes\) = 8 bytes, but data_offsets \[0, 4\] span 4/);
    expectError(() => parseSafetensors(rawFile('{"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}', d4), 'f'), /too large/);
    expectError(() => parseSafetensors(rawFile('{"t":7}', d4), 'f'), /header entry must be an object/);
    expectError(() => parseSafetensors(rawFile('{"__metadata__":{"a":1}}'), 'f'), /"__metadata__" value for key "a" must be a string/);
    expectError(() => parseSafetensors(rawFile('{"__metadata__":[1]}'), 'f'), /"__metadata__" must be an object/);
    assert.deepEqual(parseSafetensors(rawFile('{"__metadata__":null}')).metadata, {});
  });

  test('overlapping, gapped, out-of-bounds and trailing ranges', () => {
    const d8 = new Uint8Array(8);
    expectError(() => parseSafetensors(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', d8), 'f'), /overlap/);
    expectError(() => parseSafetensors(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[1],"data_offsets":[5,6]}}', d8), 'f'), /tensor "b" starts at byte 5 but the previous tensor "a" ends at 4/);
    expectError(() => parseSafetensors(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', d8), 'f'), /tensor "a" starts at byte 4 but the previous tensor ends at 0/);
    expectError(() => parseSafetensors(rawFile('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', d8), 'f'), /truncated: the header describes 16 bytes of tensor data but only 8 are present \(tensor "a" needs bytes \[0, 16\)\)/);
    expectError(() => parseSafetensors(rawFile('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', d8), 'f'), /4 unexpected bytes after the last tensor/);
    // Any key order is accepted when the ranges tile the data.
    const ok = parseSafetensors(rawFile('{"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', d8));
    assert.equal(ok.tensors.size, 2);
  });

  test('every truncation point of a real file fails clearly', () => {
    for (let cut = 0; cut < good.length; cut++) {
      expectError(() => parseSafetensors(good.subarray(0, cut), 'cut.safetensors'), /^cut\.safetensors: /, /truncated|shorter than the 8-byte|not valid JSON|not valid UTF-8/);
    }
    // Cuts inside the data say "truncated" and name the file.
    const headerEnd = 8 + Number(new DataView(good.buffer).getBigUint64(0, true));
    for (const cut of [headerEnd, headerEnd + 1, good.length - 1]) {
      expectError(() => parseSafetensors(good.subarray(0, cut), 'cut.safetensors'), /file is truncated/);
    }
  });

  test('a truncated file on disk names the path', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-st-'));
    try {
      const file = path.join(dir, 'model.safetensors');
      fs.writeFileSync(file, good.subarray(0, good.length - 5));
      expectError(() => readSafetensors(file), new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: file is truncated`));
      expectError(() => readSafetensorsHeader(file), /file is truncated/);
      expectError(() => readSafetensors(path.join(dir, 'missing.safetensors')), /missing\.safetensors: no such file/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  const arbTensors = fc.dictionary(
    fc.string({ minLength: 1, maxLength: 8 }).filter((s) => s !== '__metadata__'),
    fc.tuple(fc.constantFrom('F32', 'F64', 'I64', 'I32', 'I8', 'U8', 'BOOL', 'F16', 'BF16' as const), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 })),
    { maxKeys: 5 },
  ).map((spec) => {
    const out: Record<string, TensorInput> = {};
    const ctor = { F32: Float32Array, F64: Float64Array, I64: BigInt64Array, I32: Int32Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array, F16: Uint16Array, BF16: Uint16Array };
    for (const [name, [dtype, shape]] of Object.entries(spec)) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new ctor[dtype](n);
      new Uint8Array(data.buffer).forEach((_, i, a) => (a[i] = (i * 37 + n) & 0xff));
      out[name] = { dtype, shape, data };
    }
    return out;
  });

  test('property: random truncations only ever throw SafetensorsError', () => {
    fc.assert(fc.property(arbTensors, fc.nat(), (tensors, at) => {
      const bytes = serializeSafetensors(tensors);
      const cut = at % bytes.length;
      expectError(() => parseSafetensors(bytes.subarray(0, cut), 'p'));
    }), { numRuns: 300 });
  });

  test('property: random byte corruption parses or throws SafetensorsError, nothing else', () => {
    fc.assert(fc.property(arbTensors, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (tensors, flips) => {
      const bytes = serializeSafetensors(tensors).slice();
      for (const [at, v] of flips) bytes[at % bytes.length] = v;
      try {
        const { tensors: got } = parseSafetensors(bytes, 'p');
        for (const t of got.values()) assert.equal(t.data.length, t.shape.reduce((a, b) => a * b, 1));
      } catch (e) {
        assert.ok(e instanceof SafetensorsError, `got ${(e as Error).constructor.name}: ${(e as Error).message}`);
      }
    }), { numRuns: 500 });
  });

  test('property: round trip preserves every tensor byte-for-byte', () => {
    fc.assert(fc.property(arbTensors, (tensors) => {
      const { tensors: got } = parseSafetensors(serializeSafetensors(tensors), 'p', { upcast: false });
      assert.equal(got.size, Object.keys(tensors).length);
      for (const [name, t] of Object.entries(tensors)) {
        const g = got.get(name)!;
        assert.deepEqual(g.shape, t.shape);
        assert.deepEqual(new Uint8Array(g.data.buffer, g.data.byteOffset, g.data.byteLength), new Uint8Array(t.data.buffer));
      }
    }), { numRuns: 200 });
  });
});
