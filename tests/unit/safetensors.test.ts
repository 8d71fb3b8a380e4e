// safetensors: round trips of every dtype we read or write, hand-encoded F16/BF16/F64 values, and
// one hand-built malformed file per rejection rule (the message is checked, not just "it threw").
import { describe, expect, it } from 'vitest';
import { readSafetensors, writeSafetensors, SafetensorsError } from '../../src/io/safetensors';
import { expectClose, randomArray } from '../util/compare';

/** A file from a header (object or raw text) and a data section, exactly as given: no fixing up. */
function handBuilt(header: unknown, data: Uint8Array = new Uint8Array(0), opts: { declaredLength?: number } = {}): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const headerBytes = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + headerBytes.length + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, opts.declaredLength ?? headerBytes.length, true);
  out.set(headerBytes, 8);
  out.set(data, 8 + headerBytes.length);
  return out;
}

function u16Bytes(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint16(i * 2, v, true));
  return out;
}

function expectRejected(bytes: Uint8Array | ArrayBuffer, message: RegExp): void {
  let caught: unknown;
  try {
    readSafetensors(bytes);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a SafetensorsError matching ${message}`).toBeInstanceOf(SafetensorsError);
  expect((caught as Error).message).toMatch(message);
}

/** Bitwise equality that also treats NaN as equal to NaN and tells -0 from +0. */
function expectSameFloats(actual: Float32Array, expected: number[], label: string): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Object.is(actual[i], Math.fround(expected[i])), `${label}[${i}]: got ${actual[i]}, expected ${expected[i]}`).toBe(true);
  }
}

describe('safetensors round trips', () => {
  it('F32, I32 and I64 tensors written then read give identical values, shapes and metadata', () => {
    const weight = randomArray(3 * 5, 1, 2);
    const bias = new Float32Array([-0, Infinity, -Infinity, NaN, 1e-45]);
    const positionIds = new Int32Array([0, 1, 2, -7, 2 ** 31 - 1, -(2 ** 31)]);
    const bytes = writeSafetensors(
      {
        'layer.weight': { shape: [3, 5], data: weight },
        'layer.bias': { shape: [5], data: bias },
        position_ids: { shape: [1, 6], data: positionIds, dtype: 'I64' },
        counts: { shape: [2, 3], data: new Int32Array([1, 2, 3, 4, 5, -6]) },
        empty: { shape: [0, 4], data: new Float32Array(0) },
      },
      { format: 'pt', note: 'ünïcode ✓' },
    );
    const { tensors, metadata } = readSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', note: 'ünïcode ✓' });
    expect([...tensors.keys()].sort()).toEqual(['counts', 'empty', 'layer.bias', 'layer.weight', 'position_ids']);
    const w = tensors.get('layer.weight')!;
    expect(w.dtype).toBe('F32');
    expect(w.shape).toEqual([3, 5]);
    expectClose(w.data, weight, { atol: 0, rtol: 0, label: 'layer.weight', shape: [3, 5] });
    expectSameFloats(tensors.get('layer.bias')!.data, [...bias], 'layer.bias');
    const ids = tensors.get('position_ids')!;
    expect(ids.dtype).toBe('I64');
    expect([...ids.ints!]).toEqual([...positionIds]);
    expect(tensors.get('counts')!.dtype).toBe('I32');
    expect([...tensors.get('counts')!.ints!]).toEqual([1, 2, 3, 4, 5, -6]);
    expect([...tensors.get('counts')!.data]).toEqual([1, 2, 3, 4, 5, -6]);
    expect(tensors.get('empty')!.shape).toEqual([0, 4]);
    expect(tensors.get('empty')!.data.length).toBe(0);
  });

  it('writer lays out the file like the reference serializer: padded header, I64 then F32 then I32, names sorted', () => {
    const bytes = writeSafetensors(
      new Map([
        ['b', { shape: [1], data: new Float32Array([1]) }],
        ['10', { shape: [1], data: new Int32Array([3]) }],
        ['a', { shape: [2], data: new Float32Array([2, 3]) }],
        ['ids', { shape: [1], data: new Int32Array([4]), dtype: 'I64' as const }],
      ]),
    );
    const headerLength = new DataView(bytes.buffer).getUint32(0, true);
    expect(headerLength % 8).toBe(0);
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(header.trimEnd()).toBe(
      '{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},' +
        '"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},' +
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},' +
        '"10":{"dtype":"I32","shape":[1],"data_offsets":[20,24]}}',
    );
    expect(header.slice(header.trimEnd().length)).toMatch(/^ *$/);
    expect(bytes.length).toBe(8 + headerLength + 24);
  });

  it('reproduces the reference serializer byte for byte (safetensors test_serialization)', () => {
    // expected bytes copied from huggingface/safetensors src/tensor.rs `test_serialization`
    const expected = [
      64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34,
      70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95,
      111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0,
      64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
    ];
    // that test predates space padding (it pads nothing: 64 is already a multiple of 8)
    const bytes = writeSafetensors({ 'attn.0': { shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) } });
    expect([...bytes]).toEqual(expected);
  });

  it('F16 values encoded by hand decode exactly (normals, 65504, subnormals, ±0, ±inf, NaN) and survive an F32 round trip', () => {
    const encodings = [0x3c00, 0xc100, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3555];
    const values = [1, -2.5, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0, Infinity, -Infinity, NaN, 0.333251953125];
    const file = handBuilt({ h: { dtype: 'F16', shape: [11], data_offsets: [0, 22] } }, u16Bytes(encodings));
    const h = readSafetensors(file).tensors.get('h')!;
    expect(h.dtype).toBe('F16');
    expectSameFloats(h.data, values, 'F16');
    const again = readSafetensors(writeSafetensors({ h: { shape: h.shape, data: h.data } })).tensors.get('h')!;
    expectSameFloats(again.data, values, 'F16 → F32 → read');
  });

  it('BF16 values encoded by hand decode exactly (normals, max, float32 subnormal, ±inf, NaN)', () => {
    const encodings = [0x3f80, 0xc020, 0x7f7f, 0x0001, 0x4049, 0x8000, 0x7f80, 0xff80, 0x7fc0];
    const values = [1, -2.5, 3.3895313892515355e38, 2 ** -133, 3.140625, -0, Infinity, -Infinity, NaN];
    const file = handBuilt({ b: { dtype: 'BF16', shape: [3, 3], data_offsets: [0, 18] } }, u16Bytes(encodings));
    const b = readSafetensors(file).tensors.get('b')!;
    expect(b.shape).toEqual([3, 3]);
    expectSameFloats(b.data, values, 'BF16');
    const again = readSafetensors(writeSafetensors({ b: { shape: b.shape, data: b.data } })).tensors.get('b')!;
    expectSameFloats(again.data, values, 'BF16 → F32 → read');
  });

  it('F64 values are rounded to the nearest float32 (overflow → inf, underflow → 0)', () => {
    const values = [0.1, -2.5, 1e300, 1e-50, 123456789.123, NaN];
    const data = new Uint8Array(values.length * 8);
    values.forEach((v, i) => new DataView(data.buffer).setFloat64(i * 8, v, true));
    const d = readSafetensors(handBuilt({ d: { dtype: 'F64', shape: [6], data_offsets: [0, 48] } }, data)).tensors.get('d')!;
    expectSameFloats(d.data, [Math.fround(0.1), -2.5, Infinity, 0, Math.fround(123456789.123), NaN], 'F64');
  });

  it('small integer dtypes (I16, I8, U8, BOOL) read as ints and as floats', () => {
    const data = new Uint8Array([0xff, 0xff, 0x00, 0x80, /* I8 */ 0x80, 0x7f, /* U8 */ 0xff, 0x00, /* BOOL */ 1, 0]);
    const file = handBuilt(
      {
        i16: { dtype: 'I16', shape: [2], data_offsets: [0, 4] },
        i8: { dtype: 'I8', shape: [2], data_offsets: [4, 6] },
        u8: { dtype: 'U8', shape: [2], data_offsets: [6, 8] },
        mask: { dtype: 'BOOL', shape: [2], data_offsets: [8, 10] },
      },
      data,
    );
    const t = readSafetensors(file).tensors;
    expect([...t.get('i16')!.ints!]).toEqual([-1, -32768]);
    expect([...t.get('i8')!.ints!]).toEqual([-128, 127]);
    expect([...t.get('u8')!.ints!]).toEqual([255, 0]);
    expect([...t.get('mask')!.ints!]).toEqual([1, 0]);
    expect([...t.get('i16')!.data]).toEqual([-1, -32768]);
  });

  it('header with tensors listed out of offset order, and zero-size tensors, still reads', () => {
    const data = new Uint8Array(8);
    new DataView(data.buffer).setFloat32(0, 7, true);
    new DataView(data.buffer).setFloat32(4, 9, true);
    const file = handBuilt({
      second: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
      nothing: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      first: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
    }, data);
    const t = readSafetensors(file.buffer).tensors;
    expect(t.get('first')!.data[0]).toBe(7);
    expect(t.get('second')!.data[0]).toBe(9);
    expect(t.get('nothing')!.data.length).toBe(0);
  });
});

describe('safetensors rejects malformed files with a message naming the problem', () => {
  const f32 = (begin: number, end: number, shape = [(end - begin) / 4]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

  it('file shorter than 8 bytes', () => {
    expectRejected(new Uint8Array(5), /5 bytes, shorter than the 8-byte header length/);
  });

  it('header length beyond the end of the file', () => {
    expectRejected(handBuilt({}, new Uint8Array(0), { declaredLength: 4096 }), /header length 4096 bytes goes beyond the end of the 10-byte file/);
  });

  it('header larger than the 100 MB limit', () => {
    const file = new Uint8Array(16);
    new DataView(file.buffer).setUint32(4, 1, true); // 2^32 bytes
    expectRejected(file, /exceeds the 100 MB limit/);
  });

  it('header that is not UTF-8', () => {
    const file = handBuilt('{"a":1}');
    file[9] = 0xff;
    expectRejected(file, /not valid UTF-8/);
  });

  it('header that is not JSON', () => {
    expectRejected(handBuilt('{"a": [0, 4'), /not valid JSON/);
  });

  it('header that is JSON but not an object', () => {
    expectRejected(handBuilt('[1, 2]'), /does not start with "\{"/);
    expectRejected(handBuilt(' {"a": 1}'), /does not start with "\{"/);
    // while the smallest valid file, an empty object padded with spaces, reads
    expect(readSafetensors(handBuilt('{}      ')).tensors.size).toBe(0);
  });

  it('tensor entry that is not an object', () => {
    expectRejected(handBuilt({ w: 3 }), /tensor "w": header entry is not an object/);
  });

  it('offsets outside the data, naming the tensor', () => {
    expectRejected(handBuilt({ w: f32(0, 16) }, new Uint8Array(8)), /tensor "w": data_offsets \[0, 16\] lie outside the data section \(8 bytes\)/);
  });

  it('offsets that end before they begin', () => {
    expectRejected(handBuilt({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, new Uint8Array(8)), /tensor "w": data_offsets \[8, 4\] end before they begin/);
  });

  it('offsets that are not a pair of non-negative integers', () => {
    expectRejected(handBuilt({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, new Uint8Array(4)), /tensor "w": data_offsets \[0\] is not a pair/);
    expectRejected(handBuilt({ w: { dtype: 'F32', shape: [1], data_offsets: [-4, 0] } }, new Uint8Array(4)), /tensor "w": data_offsets \[-4,0\] is not a pair/);
  });

  it('overlapping tensors, naming both', () => {
    const file = handBuilt({ a: f32(0, 8), b: f32(4, 12) }, new Uint8Array(12));
    expectRejected(file, /tensor "b" \[4, 12\] overlaps tensor "a" \[0, 8\]/);
  });

  it('a hole between tensors (the reference requires contiguous coverage)', () => {
    const file = handBuilt({ a: f32(0, 4), b: f32(8, 12) }, new Uint8Array(12));
    expectRejected(file, /4 unused bytes after tensor "a" \(tensor "b" begins at 8, expected 4\)/);
  });

  it('unused bytes at the start of the data', () => {
    expectRejected(handBuilt({ a: f32(4, 8) }, new Uint8Array(8)), /4 unused bytes at the start of the data/);
  });

  it('unused bytes after the last tensor', () => {
    expectRejected(handBuilt({ a: f32(0, 4) }, new Uint8Array(12)), /8 unused bytes after the last tensor "a"/);
  });

  it('shape whose size disagrees with the byte length', () => {
    const file = handBuilt({ w: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 16] } }, new Uint8Array(16));
    expectRejected(file, /tensor "w": shape \[2, 3\] of F32 needs 24 bytes but data_offsets \[0, 16\] hold 16/);
  });

  it('unknown dtype, and a known-but-unsupported one', () => {
    expectRejected(handBuilt({ w: { dtype: 'F17', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "w": unknown dtype "F17"/);
    expectRejected(handBuilt({ w: { dtype: 'U32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /tensor "w": dtype U32 is not supported/);
  });

  it('negative or non-integer shape entries', () => {
    expectRejected(handBuilt({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }), /tensor "w": shape \[-1\] has an entry that is not a non-negative integer/);
    expectRejected(handBuilt({ w: { dtype: 'F32', shape: [1.5, 2], data_offsets: [0, 12] } }, new Uint8Array(12)), /tensor "w": shape \[1.5,2\]/);
    expectRejected(handBuilt({ w: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, new Uint8Array(8)), /tensor "w": shape \["2"\]/);
  });

  it('__metadata__ values that are not strings, and __metadata__ that is not an object', () => {
    expectRejected(handBuilt({ __metadata__: { format: 'pt', epoch: 3 } }), /__metadata__ value of "epoch" is 3, not a string/);
    expectRejected(handBuilt({ __metadata__: ['pt'] }), /__metadata__ is not an object/);
  });

  it('I64 values outside ±2^31, naming the tensor and the element', () => {
    const data = new Uint8Array(16);
    new DataView(data.buffer).setBigInt64(8, 2n ** 40n, true);
    expectRejected(handBuilt({ ids: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, data), /tensor "ids": I64 element 1 = 1099511627776 is outside ±2\^31/);
  });

  it('a truncated real file (cut inside the data)', () => {
    const whole = writeSafetensors({ w: { shape: [4, 4], data: randomArray(16, 3) } });
    expectRejected(whole.subarray(0, whole.length - 10), /tensor "w": data_offsets \[0, 64\] lie outside the data section \(54 bytes\)/);
  });
});

describe('safetensors writer rejects bad input', () => {
  it('data length that disagrees with the shape', () => {
    expect(() => writeSafetensors({ w: { shape: [2, 2], data: new Float32Array(3) } })).toThrow(/tensor "w": shape \[2, 2\] has 4 elements but data has 3/);
  });
  it('non-integer values for an integer dtype, and the reserved name', () => {
    expect(() => writeSafetensors({ ids: { shape: [1], data: new Float32Array([0.5]), dtype: 'I64' } })).toThrow(/I64 element 0 = 0.5 is not an integer/);
    expect(() => writeSafetensors({ __metadata__: { shape: [0], data: new Float32Array(0) } })).toThrow(/invalid tensor name/);
  });
});
