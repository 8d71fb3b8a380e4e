// safetensors read/write (REFERENCE.md "File formats"), DOM-free and Node-free: it runs in the
// Web Worker. Layout: u64 little-endian header length N, N bytes of UTF-8 JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}} padded with
// spaces, then the raw little-endian tensor bytes; offsets are relative to the end of the header.
//
// Validation follows huggingface/safetensors (safetensors/src/tensor.rs, `read_metadata` and
// `Metadata::validate`): the header must fit in the file and be at most 100 MB; tensors sorted by
// offsets must tile the data section exactly — the first begins at 0, each begins where the
// previous ends, the last ends at the end of the file — so overlaps, holes and trailing bytes are
// all errors; each tensor's byte length must equal its element count × dtype size.
//
// Every float dtype is converted to float32 on load (F16/BF16 exactly, F64 rounded to nearest),
// because the GPU side computes in f32 (SwiftShader offers no shader-f16). Integer tensors are
// returned both as float32 values and as the raw integers in `ints`.

export type StDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface StTensor {
  dtype: StDType;
  shape: number[];
  /** every element as float32 (integers converted exactly when |v| < 2^24) */
  data: Float32Array;
  /** the raw integers, for integer and BOOL dtypes only */
  ints?: Int32Array;
}

export type StWriteDType = 'F32' | 'I32' | 'I64';

export interface StWriteTensor {
  shape: number[];
  data: Float32Array | Int32Array;
  /** default: F32 for a Float32Array, I32 for an Int32Array */
  dtype?: StWriteDType;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/** Bytes per element of every dtype this reader understands. */
const DTYPE_SIZE: Record<StDType, number> = {
  F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

/** Dtypes valid in the format that we do not load (no use for them in a BERT checkpoint). */
const UNSUPPORTED_DTYPES = new Set(['U16', 'U32', 'U64', 'F8_E5M2', 'F8_E4M3', 'F8_E4M3FN', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

/** The reference implementation refuses larger headers (MAX_HEADER_SIZE). */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * Order in which the reference serializer lays tensors out: by dtype, most-aligned first (its
 * `Dtype` enum order, descending), then by name. Matching it makes our files byte-identical to
 * `safetensors.torch.save_file` on the same tensors and keeps every tensor naturally aligned.
 */
const WRITE_RANK: Record<StWriteDType, number> = { I64: 0, F32: 1, I32: 2 };

const littleEndianHost = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

interface HeaderEntry {
  name: string;
  dtype: StDType;
  shape: number[];
  begin: number;
  end: number;
}

function fail(msg: string): never {
  throw new SafetensorsError(`safetensors: ${msg}`);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Parse and validate one header entry; the caller checks how the entries tile the data. */
function parseEntry(name: string, info: unknown, dataBytes: number): HeaderEntry {
  if (!isPlainObject(info)) fail(`tensor "${name}": header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = info;
  if (typeof dtype !== 'string') fail(`tensor "${name}": dtype missing or not a string`);
  if (!(dtype in DTYPE_SIZE)) {
    if (UNSUPPORTED_DTYPES.has(dtype)) {
      fail(`tensor "${name}": dtype ${dtype} is not supported (supported: ${Object.keys(DTYPE_SIZE).join(', ')})`);
    }
    fail(`tensor "${name}": unknown dtype "${dtype}"`);
  }
  if (!Array.isArray(shape)) fail(`tensor "${name}": shape missing or not an array`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      fail(`tensor "${name}": shape ${JSON.stringify(shape)} has an entry that is not a non-negative integer`);
    }
  }
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => typeof o === 'number' && Number.isSafeInteger(o) && o >= 0)
  ) {
    fail(`tensor "${name}": data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) fail(`tensor "${name}": data_offsets [${begin}, ${end}] end before they begin`);
  if (end > dataBytes) {
    fail(`tensor "${name}": data_offsets [${begin}, ${end}] lie outside the data section (${dataBytes} bytes)`);
  }
  const st = dtype as StDType;
  const expectedBytes = elementCount(shape as number[]) * DTYPE_SIZE[st];
  if (end - begin !== expectedBytes) {
    fail(
      `tensor "${name}": shape [${(shape as number[]).join(', ')}] of ${st} needs ${expectedBytes} bytes ` +
        `but data_offsets [${begin}, ${end}] hold ${end - begin}`,
    );
  }
  return { name, dtype: st, shape: (shape as number[]).slice(), begin, end };
}

// IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Every half is exactly a float32.
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function decode(entry: HeaderEntry, bytes: Uint8Array, dataStart: number): StTensor {
  const n = elementCount(entry.shape);
  const at = dataStart + entry.begin;
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, entry.end - entry.begin);
  const data = new Float32Array(n);
  let ints: Int32Array | undefined;
  switch (entry.dtype) {
    case 'F32':
      if (littleEndianHost) {
        // one memcpy instead of n DataView reads: this is the 17 MB path of a real checkpoint
        new Uint8Array(data.buffer).set(bytes.subarray(at, at + n * 4));
      } else {
        for (let i = 0; i < n; i++) data[i] = view.getFloat32(i * 4, true);
      }
      break;
    case 'F64':
      for (let i = 0; i < n; i++) data[i] = view.getFloat64(i * 8, true); // rounds to nearest f32
      break;
    case 'F16':
      for (let i = 0; i < n; i++) data[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'BF16': {
      // bfloat16 is the upper half of a float32: shifting it back is exact, NaN payloads included
      const widened = new Uint32Array(data.buffer);
      for (let i = 0; i < n; i++) widened[i] = view.getUint16(i * 2, true) << 16;
      break;
    }
    case 'I64': {
      ints = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const low = view.getUint32(i * 8, true);
        const high = view.getInt32(i * 8 + 4, true);
        // representable in i32 exactly when the high word is the sign extension of the low word
        if (high !== (low & 0x80000000 ? -1 : 0)) {
          const value = view.getBigInt64(i * 8, true);
          fail(`tensor "${entry.name}": I64 element ${i} = ${value} is outside ±2^31, which we cannot load`);
        }
        ints[i] = low | 0;
      }
      break;
    }
    case 'I32':
      ints = new Int32Array(n);
      for (let i = 0; i < n; i++) ints[i] = view.getInt32(i * 4, true);
      break;
    case 'I16':
      ints = new Int32Array(n);
      for (let i = 0; i < n; i++) ints[i] = view.getInt16(i * 2, true);
      break;
    case 'I8':
      ints = new Int32Array(n);
      for (let i = 0; i < n; i++) ints[i] = view.getInt8(i);
      break;
    case 'U8':
      ints = new Int32Array(n);
      for (let i = 0; i < n; i++) ints[i] = view.getUint8(i);
      break;
    case 'BOOL':
      ints = new Int32Array(n);
      for (let i = 0; i < n; i++) ints[i] = view.getUint8(i) !== 0 ? 1 : 0;
      break;
  }
  if (ints) for (let i = 0; i < n; i++) data[i] = ints[i];
  return ints ? { dtype: entry.dtype, shape: entry.shape, data, ints } : { dtype: entry.dtype, shape: entry.shape, data };
}

/** Parse a whole .safetensors file; throws SafetensorsError naming the problem (and the tensor). */
export function readSafetensors(
  input: ArrayBufferLike | Uint8Array,
): { tensors: Map<string, StTensor>; metadata: Record<string, string> } {
  const bytes = input instanceof Uint8Array ? input : new Uint8Array(input);
  if (bytes.byteLength < 8) {
    fail(`file is ${bytes.byteLength} bytes, shorter than the 8-byte header length (truncated or not a safetensors file)`);
  }
  const lengthView = new DataView(bytes.buffer, bytes.byteOffset, 8);
  const headerLow = lengthView.getUint32(0, true);
  const headerHigh = lengthView.getUint32(4, true);
  const headerBytes = headerHigh * 2 ** 32 + headerLow;
  if (headerBytes > MAX_HEADER_BYTES) {
    fail(`header length ${headerBytes} bytes exceeds the 100 MB limit (not a safetensors file?)`);
  }
  if (8 + headerBytes > bytes.byteLength) {
    fail(`header length ${headerBytes} bytes goes beyond the end of the ${bytes.byteLength}-byte file (truncated download?)`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes));
  } catch {
    fail('header is not valid UTF-8');
  }
  // The current reference implementation requires the JSON to start right away with '{'.
  if (!text.startsWith('{')) fail(`header does not start with "{" (starts with ${JSON.stringify(text.slice(0, 16))})`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (!isPlainObject(header)) fail('header JSON is not an object');

  const dataStart = 8 + headerBytes;
  const dataBytes = bytes.byteLength - dataStart;
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isPlainObject(info)) fail('__metadata__ is not an object of strings');
      for (const [key, value] of Object.entries(info)) {
        if (typeof value !== 'string') fail(`__metadata__ value of "${key}" is ${JSON.stringify(value)}, not a string`);
        metadata[key] = value;
      }
      continue;
    }
    entries.push(parseEntry(name, info, dataBytes));
  }

  // Tile check, as the reference does it: sort by (begin, end), then walk.
  const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: HeaderEntry | undefined;
  for (const e of sorted) {
    if (e.begin < cursor) {
      fail(`tensor "${e.name}" [${e.begin}, ${e.end}] overlaps tensor "${previous!.name}" [${previous!.begin}, ${previous!.end}]`);
    }
    if (e.begin > cursor) {
      const after = previous ? `after tensor "${previous.name}"` : 'at the start of the data';
      fail(`${e.begin - cursor} unused bytes ${after} (tensor "${e.name}" begins at ${e.begin}, expected ${cursor}); tensors must cover the data contiguously`);
    }
    cursor = e.end;
    previous = e;
  }
  if (cursor !== dataBytes) {
    const after = previous ? `after the last tensor "${previous.name}"` : 'in a file without tensors';
    fail(`${dataBytes - cursor} unused bytes ${after}: the data section is ${dataBytes} bytes but the tensors cover ${cursor}`);
  }

  const tensors = new Map<string, StTensor>();
  for (const e of entries) tensors.set(e.name, decode(e, bytes, dataStart));
  return { tensors, metadata };
}

function checkedWriteDType(name: string, t: StWriteTensor): StWriteDType {
  const dtype = t.dtype ?? (t.data instanceof Int32Array ? 'I32' : 'F32');
  if (dtype !== 'F32' && dtype !== 'I32' && dtype !== 'I64') fail(`tensor "${name}": cannot write dtype ${String(dtype)}`);
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`tensor "${name}": shape ${JSON.stringify(t.shape)} has an entry that is not a non-negative integer`);
  }
  const n = elementCount(t.shape);
  if (t.data.length !== n) fail(`tensor "${name}": shape [${t.shape.join(', ')}] has ${n} elements but data has ${t.data.length}`);
  if (dtype !== 'F32' && t.data instanceof Float32Array) {
    for (let i = 0; i < n; i++) {
      const v = t.data[i];
      if (!Number.isInteger(v)) fail(`tensor "${name}": ${dtype} element ${i} = ${v} is not an integer`);
      if (dtype === 'I32' && (v < -(2 ** 31) || v >= 2 ** 31)) fail(`tensor "${name}": I32 element ${i} = ${v} is out of range`);
    }
  }
  return dtype;
}

/**
 * Serialize tensors to a .safetensors file (an ArrayBuffer-backed array, ready for `new Blob`). Layout as the reference serializer: header keys
 * `__metadata__` first then tensors in offset order, compact JSON padded with spaces to a multiple
 * of 8, tensors ordered by dtype alignment (I64, F32, I32) and then by name, offsets contiguous.
 */
export function writeSafetensors(
  tensors: Map<string, StWriteTensor> | Record<string, StWriteTensor>,
  metadata?: Record<string, string>,
): Uint8Array<ArrayBuffer> {
  const items = (tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors)).map(([name, t]) => {
    if (name === '' || name === '__metadata__') fail(`invalid tensor name ${JSON.stringify(name)}`);
    return { name, t, dtype: checkedWriteDType(name, t) };
  });
  items.sort((a, b) => WRITE_RANK[a.dtype] - WRITE_RANK[b.dtype] || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

  // Built by hand rather than JSON.stringify(object): a JS object would move integer-like names
  // ("0", "12") to the front, breaking the offset order of the header.
  const fields: string[] = [];
  if (metadata) {
    for (const [key, value] of Object.entries(metadata)) {
      if (typeof value !== 'string') fail(`__metadata__ value of "${key}" is not a string`);
    }
    fields.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  let offset = 0;
  for (const item of items) {
    const bytes = elementCount(item.t.shape) * DTYPE_SIZE[item.dtype];
    fields.push(`${JSON.stringify(item.name)}:{"dtype":"${item.dtype}","shape":[${item.t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  let headerText = `{${fields.join(',')}}`;
  let header = new TextEncoder().encode(headerText);
  const padding = (8 - (header.byteLength % 8)) % 8;
  if (padding) {
    headerText += ' '.repeat(padding);
    header = new TextEncoder().encode(headerText);
  }

  const out = new Uint8Array(8 + header.byteLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, header.byteLength % 2 ** 32, true);
  view.setUint32(4, Math.floor(header.byteLength / 2 ** 32), true);
  out.set(header, 8);
  let at = 8 + header.byteLength;
  for (const { t, dtype } of items) {
    const n = t.data.length;
    if (dtype === 'F32') {
      for (let i = 0; i < n; i++) view.setFloat32(at + i * 4, t.data[i], true);
      at += n * 4;
    } else if (dtype === 'I32') {
      for (let i = 0; i < n; i++) view.setInt32(at + i * 4, t.data[i], true);
      at += n * 4;
    } else {
      for (let i = 0; i < n; i++) view.setBigInt64(at + i * 8, BigInt(t.data[i]), true);
      at += n * 8;
    }
  }
  return out;
}
