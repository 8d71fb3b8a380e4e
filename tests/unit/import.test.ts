import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ImportError, importExamples } from '../../src/data/import';

const fixtures = join(__dirname, '..', 'fixtures', 'import');
const load = (name: string) => new Uint8Array(readFileSync(join(fixtures, name)));
const importFixture = (name: string, opts?: Parameters<typeof importExamples>[2]) => importExamples(load(name), name, opts);

/** Runs the import, expects an ImportError, and returns it for checks on message and line. */
function importError(name: string, opts?: Parameters<typeof importExamples>[2]): ImportError {
  try {
    const result = importFixture(name, opts);
    throw new Error(`${name} imported without error: ${result.examples.length} examples, classes ${result.classes.join(', ')}`);
  } catch (e) {
    if (!(e instanceof ImportError)) throw e;
    return e;
  }
}

describe('importExamples: good files', () => {
  it('CSV with BOM, CRLF, quoted commas, "" escapes and a line break inside quotes', () => {
    const { examples, classes, format, warnings } = importFixture('good.csv');
    expect(format).toBe('csv');
    expect(classes).toEqual(['negative', 'positive']);
    expect(examples).toEqual([
      { text: 'A film, in short, about nothing.', label: 0 },
      { text: 'She said "wow" twice', label: 1 },
      { text: 'Line one\nline two of the same review', label: 1 },
      { text: 'Plain text without quotes', label: 0 },
      { text: 'padded text', label: 0 },
    ]);
    expect(warnings.filter((w) => !w.includes('fewer than'))).toEqual([]);
  });

  it('TSV keeps quote characters as text and orders integer labels numerically', () => {
    const { examples, classes, format } = importFixture('good.tsv');
    expect(format).toBe('tsv');
    expect(classes).toEqual(['0', '1']);
    expect(examples.map((e) => e.label)).toEqual([1, 0, 1, 1, 0]);
    expect(examples[2].text).toBe('"quotes" stay as they are in tsv');
    expect(examples[0].text).toBe("it 's a charming and often affecting journey .");
  });

  it('JSONL with mixed-case keys, key synonyms, blank lines and non-ASCII text', () => {
    const { examples, classes, format } = importFixture('good.jsonl');
    expect(format).toBe('jsonl');
    expect(classes).toEqual(['neg', 'pos']);
    expect(examples).toEqual([
      { text: 'great phone, works well', label: 1 },
      { text: 'battery died in a day', label: 0 },
      { text: 'unicode: café — naïve 😀', label: 1 },
      { text: 'numbers as labels are fine too', label: 0 },
    ]);
  });

  it('JSONL sentence pairs fill textPair; labels 0,1,2,10 sort as numbers', () => {
    const { examples, classes } = importFixture('good-pairs.jsonl');
    expect(classes).toEqual(['0', '1', '2', '10']);
    expect(examples[0]).toEqual({ text: 'A man is playing a guitar.', textPair: 'A person plays music.', label: 0 });
    expect(examples.map((e) => e.label)).toEqual([0, 2, 1, 3]);
  });

  it('detects the format from the content when the extension says nothing', () => {
    expect(importExamples(load('good.tsv'), 'upload.txt').format).toBe('tsv');
    expect(importExamples(load('good.jsonl'), 'upload').format).toBe('jsonl');
    expect(importExamples(load('good.csv'), 'upload.dat').format).toBe('csv');
  });

  it('reads a tab-separated file named .csv as TSV, with a warning', () => {
    const { format, warnings } = importExamples(load('good.tsv'), 'export.csv');
    expect(format).toBe('tsv');
    expect(warnings.join('\n')).toMatch(/named \.csv but .* tabs/);
  });

  it('accepts an ArrayBuffer as well as a Uint8Array', () => {
    const bytes = load('good.csv');
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    expect(importExamples(buffer, 'good.csv').examples).toHaveLength(5);
  });

  it('warns about duplicates, conflicting labels, strong imbalance and tiny classes', () => {
    const { examples, warnings } = importFixture('warnings.csv');
    expect(examples).toHaveLength(22);
    const text = warnings.join('\n');
    expect(text).toMatch(/2 duplicate examples \(line 20 repeats line 2\)/);
    expect(text).toMatch(/1 text appears again with a different label \(line 23 has label "small", line 5 "big"\)/);
    expect(text).toMatch(/strongly imbalanced: "big" has 20 examples, "small" only 2/);
    expect(text).toMatch(/class "small" has fewer than 10 examples/);
  });
});

describe('importExamples: each bad file names its problem and line', () => {
  const cases: { file: string; message: RegExp; line?: number; opts?: Parameters<typeof importExamples>[2] }[] = [
    { file: 'bad-encoding.csv', message: /line 4 is not valid UTF-8 \(byte 0xe9/, line: 4 },
    { file: 'utf16.csv', message: /UTF-16.*save it as UTF-8/, line: 1 },
    {
      file: 'missing-columns.csv',
      message: /missing column: expected a text column \(text, sentence, sentence1, text_a\) and a label column \(label, labels, class, category\); the header on line 1 has "review", "score"/,
      line: 1,
    },
    { file: 'missing-label.tsv', message: /missing column: expected a label column .* has "text", "sentiment"/, line: 1 },
    { file: 'empty-text.csv', message: /line 3 has an empty text/, line: 3 },
    { file: 'empty-label.tsv', message: /line 5 has an empty label/, line: 5 },
    { file: 'wrong-fields.csv', message: /line 6 has 3 fields but the header has 2 \(a text that contains commas must be enclosed in double quotes\)/, line: 6 },
    { file: 'unterminated-quote.csv', message: /unterminated quote: the quoted field that opens on line 3 is never closed/, line: 3 },
    { file: 'text-after-quote.csv', message: /line 3: unexpected text after a closing quote/, line: 3 },
    { file: 'invalid-json.jsonl', message: /line 3 is not valid JSON/, line: 3 },
    { file: 'not-object.jsonl', message: /line 2 is not a JSON object/, line: 2 },
    { file: 'missing-key.jsonl', message: /missing column: line 3 has "review", "label"; expected a text key/, line: 3 },
    { file: 'empty.csv', message: /empty\.csv is empty/ },
    { file: 'blank-lines.csv', message: /is empty \(only blank lines\)/ },
    { file: 'header-only.csv', message: /header row but no examples/, line: 1 },
    { file: 'single-class.csv', message: /every example has the label "pos"; a classifier needs at least 2 classes/ },
    { file: 'too-many-classes.csv', message: /60 different labels \(more than 50\), e\.g\. "sentence number 0".*probably holds texts/ },
    { file: 'too-many-classes.csv', message: /60 different labels \(more than 8\)/, opts: { maxClasses: 8 } },
    { file: 'json-array.json', message: /one JSON array; expected JSON Lines/, line: 1 },
    { file: 'good.csv', message: /good\.csv is 226 bytes, more than the 100 bytes a browser tab can safely load/, opts: { maxBytes: 100 } },
    // the size check comes before decoding: an oversized file with bad bytes reports its size
    { file: 'bad-encoding.csv', message: /bad-encoding\.csv is 45 bytes, more than the 10 bytes/, opts: { maxBytes: 10 } },
  ];
  for (const { file, message, line, opts } of cases) {
    it(`${file}${opts ? ` with ${JSON.stringify(opts)}` : ''}: ${message.source.slice(0, 60)}`, () => {
      const error = importError(file, opts);
      expect(error.message).toMatch(message);
      expect(error.line).toBe(line);
    });
  }

  it('a lone bad byte deep in a large file is found on the right line', () => {
    const rows = ['text,label', ...Array.from({ length: 5000 }, (_, i) => `row ${i} text ünïcödé,${i % 2}`)];
    const bytes = new TextEncoder().encode(rows.join('\n') + '\n');
    const lineOf = 4321; // 1-based: header is line 1, row i is line i + 2
    const offset = new TextEncoder().encode(rows.slice(0, lineOf - 1).join('\n') + '\nrow ').length;
    bytes[offset] = 0xc3; // lead byte of a 2-byte sequence followed by an ASCII digit: invalid
    expect(() => importExamples(bytes, 'big.csv')).toThrowError(new RegExp(`^line ${lineOf} is not valid UTF-8`));
  });

  it('rejects overlong and surrogate encodings the decoder also rejects', () => {
    for (const bad of [[0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      const bytes = new Uint8Array([...new TextEncoder().encode('text,label\nok,a\nx'), ...bad, ...new TextEncoder().encode(',b\n')]);
      expect(() => importExamples(bytes, 'x.csv'), `bytes ${bad.map((b) => b.toString(16))}`).toThrowError(/^line 3 is not valid UTF-8/);
    }
  });
});
