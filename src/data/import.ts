// Bring-your-own data: a CSV, TSV or JSONL file of labelled texts, checked line by line.
// Pure (no DOM, no Node): the worker calls it on the bytes of a dropped file; on a bad file it
// throws an ImportError that names the line, and the worker keeps the dataset it already had.
//
// Accepted columns (header names, case-insensitive; JSONL uses the same names as keys):
//   text   text | sentence | sentence1 | text_a
//   pair   text_pair | sentence2 | text_b          (optional: the second segment of a pair task)
//   label  label | labels | class | category
// CSV follows RFC 4180 (quoted fields, "" for a quote, line breaks inside quotes, CRLF or LF).
// TSV follows the IANA text/tab-separated-values definition: no quoting, so a field cannot hold a
// tab or a line break, and quote characters are text (as in the GLUE .tsv files).

import type { Example } from './datasets';

export class ImportError extends Error {
  /** 1-based line of the file the problem is on, where there is one */
  line?: number;
  constructor(message: string, line?: number) {
    super(message);
    this.name = 'ImportError';
    if (line !== undefined) this.line = line;
  }
}

export type ImportFormat = 'csv' | 'tsv' | 'jsonl';

export interface ImportOptions {
  /** larger files are refused before decoding; default 200 MB */
  maxBytes?: number;
  /** more distinct labels than this is taken as a text column used as the label; default 50 */
  maxClasses?: number;
}

export interface ImportResult {
  examples: Example[];
  classes: string[];
  format: ImportFormat;
  warnings: string[];
}

export const textColumns = ['text', 'sentence', 'sentence1', 'text_a'];
export const pairColumns = ['text_pair', 'sentence2', 'text_b'];
export const labelColumns = ['label', 'labels', 'class', 'category'];

const MB = 1024 * 1024;
/** one class this many times larger than another earns a warning */
const imbalanceRatio = 5;
/** fewer examples than this in a class leaves it one or no example in dev and test (10 % each) */
const fewPerClass = 10;

/** A row before validation: where it starts in the file and its raw values. */
interface RawRow {
  line: number;
  text: string | undefined;
  pair: string | undefined;
  label: string | undefined;
}

export function importExamples(bytes: ArrayBuffer | Uint8Array, fileName: string, opts: ImportOptions = {}): ImportResult {
  const maxBytes = opts.maxBytes ?? 200 * MB;
  const maxClasses = opts.maxClasses ?? 50;
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);

  // Decoding makes a UTF-16 string of about twice the file's size next to the bytes, and parsing
  // adds the rows: refuse before spending the memory.
  if (data.byteLength > maxBytes) {
    throw new ImportError(
      `${fileName} is ${formatSize(data.byteLength)}, more than the ${formatSize(maxBytes)} a browser tab can safely load; use a sample of it`,
    );
  }
  if (data.byteLength === 0) throw new ImportError(`${fileName} is empty`);

  const text = decodeUtf8(data);
  if (!text.trim()) throw new ImportError(`${fileName} is empty (only blank lines)`);

  const warnings: string[] = [];
  const format = detectFormat(fileName, text, warnings);
  const rows = format === 'jsonl' ? readJsonl(text) : readDelimited(text, format);
  return validate(rows, format, maxClasses, warnings);
}

// ---------------------------------------------------------------- bytes → text

function formatSize(bytes: number): string {
  if (bytes >= MB) return `${(bytes / MB).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} bytes`;
}

function decodeUtf8(data: Uint8Array): string {
  if ((data[0] === 0xff && data[1] === 0xfe) || (data[0] === 0xfe && data[1] === 0xff)) {
    throw new ImportError('the file is saved as UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8', 1);
  }
  try {
    // the decoder drops a UTF-8 byte-order mark by itself (ignoreBOM defaults to false)
    return new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    const offset = firstInvalidUtf8(data);
    let line = 1;
    for (let i = 0; i < offset; i++) if (data[i] === 0x0a) line++;
    const hex = offset < data.length ? `0x${data[offset].toString(16).padStart(2, '0')}` : 'end of file';
    throw new ImportError(
      `line ${line} is not valid UTF-8 (byte ${hex} at offset ${offset}); the file is probably in another encoding such as Windows-1252 or Latin-1: save it as UTF-8`,
      line,
    );
  }
}

/** Byte offset of the first byte that is not part of a well-formed UTF-8 sequence (Unicode 15, table 3-7). */
function firstInvalidUtf8(data: Uint8Array): number {
  let i = 0;
  while (i < data.length) {
    const b = data[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    let length: number;
    let lo = 0x80;
    let hi = 0xbf; // allowed range of the second byte; the rest are always 80..BF
    if (b >= 0xc2 && b <= 0xdf) length = 2;
    else if (b >= 0xe0 && b <= 0xef) {
      length = 3;
      if (b === 0xe0) lo = 0xa0; // overlong
      if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      length = 4;
      if (b === 0xf0) lo = 0x90; // overlong
      if (b === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return i;
    if (i + length > data.length) return i;
    if (data[i + 1] < lo || data[i + 1] > hi) return i;
    for (let k = 2; k < length; k++) if (data[i + k] < 0x80 || data[i + k] > 0xbf) return i;
    i += length;
  }
  return data.length;
}

// ---------------------------------------------------------------- format

function extensionOf(fileName: string): string {
  const dot = fileName.lastIndexOf('.');
  return dot < 0 ? '' : fileName.slice(dot + 1).toLowerCase();
}

function detectFormat(fileName: string, text: string, warnings: string[]): ImportFormat {
  const first = text.trimStart()[0];
  if (first === '[') {
    throw new ImportError('the file is one JSON array; expected JSON Lines (JSONL): one JSON object per line', 1);
  }
  const headerLine = text.slice(0, (text.indexOf('\n') + 1 || text.length + 1) - 1);
  const tabs = headerLine.includes('\t');
  const commas = headerLine.includes(',');
  const ext = extensionOf(fileName);
  if (ext === 'jsonl' || ext === 'ndjson' || ext === 'json') return 'jsonl';
  if (ext === 'csv' || ext === 'tsv' || ext === 'tab') {
    const named: ImportFormat = ext === 'csv' ? 'csv' : 'tsv';
    // spreadsheet exports are often tab-separated whatever the extension says
    if (named === 'csv' && tabs && !commas) {
      warnings.push(`${fileName} is named .csv but its header is separated by tabs; read it as TSV`);
      return 'tsv';
    }
    if (named === 'tsv' && commas && !tabs) {
      warnings.push(`${fileName} is named .${ext} but its header is separated by commas; read it as CSV`);
      return 'csv';
    }
    return named;
  }
  if (first === '{') return 'jsonl';
  return tabs ? 'tsv' : 'csv';
}

// ---------------------------------------------------------------- CSV / TSV

/** One record of a delimited file and the line it starts on. */
interface DelimitedRecord {
  line: number;
  fields: string[];
}

/** RFC 4180 records; `text` has LF line ends. Blank lines are skipped. */
function parseCsv(text: string): DelimitedRecord[] {
  const records: DelimitedRecord[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const startLine = line;
    const fields: string[] = [];
    for (;;) {
      if (text.charCodeAt(i) === 0x22 /* " */) {
        const openLine = line;
        let value = '';
        let from = i + 1;
        for (;;) {
          const close = text.indexOf('"', from);
          if (close < 0) {
            throw new ImportError(
              `unterminated quote: the quoted field that opens on line ${openLine} is never closed (a quote inside a quoted field is written as "")`,
              openLine,
            );
          }
          value += text.slice(from, close);
          if (text.charCodeAt(close + 1) === 0x22) {
            value += '"'; // "" is an escaped quote
            from = close + 2;
            continue;
          }
          i = close + 1;
          break;
        }
        for (let k = value.indexOf('\n'); k >= 0; k = value.indexOf('\n', k + 1)) line++;
        fields.push(value);
        const next = text.charCodeAt(i);
        if (i < n && next !== 0x2c /* , */ && next !== 0x0a) {
          throw new ImportError(
            `line ${line}: unexpected text after a closing quote (a quote inside a quoted field is written as "")`,
            line,
          );
        }
      } else {
        let end = i;
        while (end < n) {
          const c = text.charCodeAt(end);
          if (c === 0x2c || c === 0x0a) break;
          end++;
        }
        fields.push(text.slice(i, end));
        i = end;
      }
      if (i >= n) break;
      if (text.charCodeAt(i) === 0x2c) {
        i++;
        continue;
      }
      // a line break ends the record
      i++;
      line++;
      break;
    }
    if (!(fields.length === 1 && fields[0].trim() === '')) records.push({ line: startLine, fields });
  }
  return records;
}

function parseTsv(text: string): DelimitedRecord[] {
  const records: DelimitedRecord[] = [];
  const lines = text.split('\n');
  for (let k = 0; k < lines.length; k++) {
    if (lines[k].trim() === '') continue;
    records.push({ line: k + 1, fields: lines[k].split('\t') });
  }
  return records;
}

function findColumn(header: string[], names: string[]): number {
  for (const name of names) {
    const index = header.indexOf(name);
    if (index >= 0) return index;
  }
  return -1;
}

function readDelimited(text: string, format: 'csv' | 'tsv'): RawRow[] {
  const normalised = text.replace(/\r\n?/g, '\n');
  const records = format === 'csv' ? parseCsv(normalised) : parseTsv(normalised);
  const headerRecord = records[0];
  const header = headerRecord.fields.map((f) => f.trim().toLowerCase());
  const textIndex = findColumn(header, textColumns);
  const pairIndex = findColumn(header, pairColumns);
  const labelIndex = findColumn(header, labelColumns);
  if (textIndex < 0 || labelIndex < 0) {
    const missing = [
      textIndex < 0 ? `a text column (${textColumns.join(', ')})` : '',
      labelIndex < 0 ? `a label column (${labelColumns.join(', ')})` : '',
    ].filter(Boolean);
    const found = headerRecord.fields.map((f) => JSON.stringify(f.trim())).join(', ');
    throw new ImportError(
      `missing column: expected ${missing.join(' and ')}; the header on line ${headerRecord.line} has ${found}. The first line must name the columns`,
      headerRecord.line,
    );
  }
  if (records.length === 1) {
    throw new ImportError(`the file has a header row but no examples after it`, headerRecord.line);
  }
  const rows: RawRow[] = [];
  for (let r = 1; r < records.length; r++) {
    const { line, fields } = records[r];
    if (fields.length !== header.length) {
      const hint =
        format === 'csv'
          ? 'a text that contains commas must be enclosed in double quotes'
          : 'a text must not contain tab characters';
      throw new ImportError(
        `line ${line} has ${fields.length} field${fields.length === 1 ? '' : 's'} but the header has ${header.length} (${hint})`,
        line,
      );
    }
    rows.push({
      line,
      text: fields[textIndex],
      pair: pairIndex >= 0 ? fields[pairIndex] : undefined,
      label: fields[labelIndex],
    });
  }
  return rows;
}

// ---------------------------------------------------------------- JSONL

function readJsonl(text: string): RawRow[] {
  const lines = text.split('\n');
  const rows: RawRow[] = [];
  for (let k = 0; k < lines.length; k++) {
    const source = lines[k].trim();
    if (!source) continue;
    const line = k + 1;
    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch (e) {
      throw new ImportError(`line ${line} is not valid JSON: ${(e as Error).message}`, line);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ImportError(`line ${line} is not a JSON object (expected {"text": ..., "label": ...})`, line);
    }
    const byName = new Map<string, unknown>();
    for (const [key, v] of Object.entries(value)) {
      const name = key.trim().toLowerCase();
      if (!byName.has(name)) byName.set(name, v);
    }
    const pick = (names: string[]) => names.find((name) => byName.has(name));
    const textKey = pick(textColumns);
    const labelKey = pick(labelColumns);
    if (!textKey || !labelKey) {
      const missing = [
        !textKey ? `a text key (${textColumns.join(', ')})` : '',
        !labelKey ? `a label key (${labelColumns.join(', ')})` : '',
      ].filter(Boolean);
      const found = Object.keys(value).map((key) => JSON.stringify(key)).join(', ') || 'no keys';
      throw new ImportError(`missing column: line ${line} has ${found}; expected ${missing.join(' and ')}`, line);
    }
    const textValue = byName.get(textKey);
    if (textValue !== null && textValue !== undefined && typeof textValue !== 'string') {
      throw new ImportError(`line ${line}: "${textKey}" must be a string, not ${JSON.stringify(textValue)}`, line);
    }
    const pairKey = pick(pairColumns);
    const pairValue = pairKey ? byName.get(pairKey) : undefined;
    if (pairValue !== null && pairValue !== undefined && typeof pairValue !== 'string') {
      throw new ImportError(`line ${line}: "${pairKey}" must be a string, not ${JSON.stringify(pairValue)}`, line);
    }
    const labelValue = byName.get(labelKey);
    if (typeof labelValue === 'object' && labelValue !== null) {
      throw new ImportError(`line ${line}: "${labelKey}" must be a string or a number, not ${JSON.stringify(labelValue)}`, line);
    }
    rows.push({
      line,
      text: (textValue as string | null | undefined) ?? '',
      // a pair key present on some lines makes the pair column required on all of them (checked later)
      pair: pairKey ? ((pairValue as string | null | undefined) ?? '') : undefined,
      label: labelValue === null || labelValue === undefined ? '' : String(labelValue),
    });
  }
  return rows;
}

// ---------------------------------------------------------------- checks shared by the formats

/** Integer labels sort as numbers (so "2" < "10" and label "0" is class 0); names sort as text. */
function orderClasses(labels: Iterable<string>): string[] {
  const classes = [...new Set(labels)];
  if (classes.every((c) => /^-?\d+$/.test(c))) return classes.sort((a, b) => Number(a) - Number(b));
  return classes.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function validate(rows: RawRow[], format: ImportFormat, maxClasses: number, warnings: string[]): ImportResult {
  if (rows.length === 0) throw new ImportError('the file has no examples');
  const hasPair = rows.some((row) => row.pair !== undefined);
  const labels: string[] = [];
  for (const row of rows) {
    const text = (row.text ?? '').trim();
    const pair = (row.pair ?? '').trim();
    const label = (row.label ?? '').trim();
    if (!text) throw new ImportError(`line ${row.line} has an empty text`, row.line);
    if (hasPair && !pair) throw new ImportError(`line ${row.line} has an empty second text (text_pair / sentence2 / text_b)`, row.line);
    if (!label) throw new ImportError(`line ${row.line} has an empty label`, row.line);
    labels.push(label);
  }

  const classes = orderClasses(labels);
  if (classes.length < 2) {
    throw new ImportError(`every example has the label ${JSON.stringify(classes[0])}; a classifier needs at least 2 classes`);
  }
  if (classes.length > maxClasses) {
    const sample = classes.slice(0, 3).map((c) => JSON.stringify(c.length > 40 ? `${c.slice(0, 40)}…` : c));
    throw new ImportError(
      `${classes.length} different labels (more than ${maxClasses}), e.g. ${sample.join(', ')}: the label column probably holds texts, not class names`,
    );
  }

  const classIndex = new Map(classes.map((c, i) => [c, i]));
  const examples: Example[] = rows.map((row, r) => {
    const example: Example = { text: row.text!.trim(), label: classIndex.get(labels[r])! };
    if (hasPair) example.textPair = row.pair!.trim();
    return example;
  });

  // duplicates: the same text twice can land in train and test and inflate the scores; the same
  // text under two labels is label noise
  const firstSeen = new Map<string, number>();
  let duplicates = 0;
  let conflicts = 0;
  let firstDuplicate = '';
  let firstConflict = '';
  examples.forEach((example, r) => {
    const key = hasPair ? `${example.text}\u0000${example.textPair}` : example.text;
    const earlier = firstSeen.get(key);
    if (earlier === undefined) {
      firstSeen.set(key, r);
      return;
    }
    if (examples[earlier].label === example.label) {
      duplicates++;
      firstDuplicate ||= `line ${rows[r].line} repeats line ${rows[earlier].line}`;
    } else {
      conflicts++;
      firstConflict ||= `line ${rows[r].line} has label ${JSON.stringify(labels[r])}, line ${rows[earlier].line} ${JSON.stringify(labels[earlier])}`;
    }
  });
  if (duplicates) {
    warnings.push(`${duplicates} duplicate example${duplicates === 1 ? '' : 's'} (${firstDuplicate}); a duplicate can land in both train and test and inflate the test score`);
  }
  if (conflicts) {
    warnings.push(`${conflicts} text${conflicts === 1 ? '' : 's'} appear${conflicts === 1 ? 's' : ''} again with a different label (${firstConflict})`);
  }

  const counts = classes.map(() => 0);
  for (const example of examples) counts[example.label]++;
  const largest = counts.indexOf(Math.max(...counts));
  const smallest = counts.indexOf(Math.min(...counts));
  if (counts[largest] >= imbalanceRatio * counts[smallest]) {
    const share = ((100 * counts[largest]) / examples.length).toFixed(0);
    warnings.push(
      `classes are strongly imbalanced: ${JSON.stringify(classes[largest])} has ${counts[largest]} examples, ${JSON.stringify(classes[smallest])} only ${counts[smallest]}; always answering ${JSON.stringify(classes[largest])} already scores ${share} % accuracy`,
    );
  }
  const rare = classes.filter((_, c) => counts[c] < fewPerClass);
  if (rare.length) {
    warnings.push(
      `${rare.length === 1 ? 'class' : 'classes'} ${rare.map((c) => JSON.stringify(c)).join(', ')} ha${rare.length === 1 ? 's' : 've'} fewer than ${fewPerClass} examples: too few to learn or to measure`,
    );
  }
  return { examples, classes, format, warnings };
}
