// WordPiece tokenizer: the shipped vocabulary, known bert-base-uncased tokenizations, the rules of
// the basic tokenizer and of greedy longest-match-first on small hand-made vocabularies, encoding
// with truncation and padding, and bad vocabularies. Agreement with an independent implementation
// on hundreds of texts is in tokenizer-oracle.test.ts.

import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { truncateLongestFirst, WordPieceTokenizer } from '../../src/data/wordpiece';

const root = join(__dirname, '..', '..');
const vocabText = readFileSync(join(root, 'public', 'vocab.txt'), 'utf8');
const bert = WordPieceTokenizer.fromVocabText(vocabText);

/** a small vocabulary whose ids are easy to read: specials first, then the listed pieces. */
function tinyTokenizer(pieces: string[], opts = {}) {
  return new WordPieceTokenizer(['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', ...pieces], opts);
}

describe('shipped vocabulary public/vocab.txt', () => {
  it('is byte-identical to bert-base-uncased vocab.txt (30522 lines, sha256 07eced37…)', () => {
    // The Hub's file: 231,508 bytes, git blob fb140275c155a9c7c5a3b3e0e77a9e839594a938.
    expect(vocabText.split('\n').length - 1).toBe(30522);
    expect(vocabText.endsWith('\n')).toBe(true);
    expect(Buffer.byteLength(vocabText, 'utf8')).toBe(231508);
    expect(createHash('sha256').update(vocabText).digest('hex')).toBe('07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3');
  });

  it('has the special tokens and well-known pieces at their ids', () => {
    expect([bert.padId, bert.unkId, bert.clsId, bert.sepId, bert.maskId]).toEqual([0, 100, 101, 102, 103]);
    expect(bert.vocabSize).toBe(30522);
    const known: [number, string][] = [[1, '[unused0]'], [999, '!'], [1005, "'"], [1010, ','], [1996, 'the'], [2015, '##s'], [2023, 'this'], [7592, 'hello'], [2088, 'world'], [30521, '##～']];
    for (const [id, piece] of known) expect(bert.idToToken(id), `id ${id}`).toBe(piece);
    for (let id = 999; id <= 1010; id++) expect(bert.idToToken(id), `id ${id}`).toMatch(/^[!-,]$/);
  });

  it('equals what scripts/build-vocab.mjs writes (the build is reproducible)', () => {
    const out = execFileSync(process.execPath, [join(root, 'scripts', 'build-vocab.mjs'), '--check'], { encoding: 'utf8' });
    expect(out).toContain('up to date (30522 pieces)');
  });
});

describe('known bert-base-uncased tokenizations', () => {
  it('"Hello, world!" encodes to [CLS] hello , world ! [SEP] = 101 7592 1010 2088 999 102', () => {
    const enc = bert.encode('Hello, world!');
    expect(enc.tokens).toEqual(['[CLS]', 'hello', ',', 'world', '!', '[SEP]']);
    expect(enc.ids).toEqual([101, 7592, 1010, 2088, 999, 102]);
    expect(enc.typeIds).toEqual([0, 0, 0, 0, 0, 0]);
    expect(enc.mask).toEqual([1, 1, 1, 1, 1, 1]);
  });

  it('splits "unaffable" into una ##ffa ##ble (longest match: "una" is a piece)', () => {
    // The often-quoted "un ##aff ##able" comes from the BERT README's illustration, not from this
    // vocabulary; transformers.js gives una ##ffa ##ble as well (tokenizer-oracle.test.ts).
    expect(bert.tokenize('unaffable')).toEqual(['una', '##ffa', '##ble']);
    expect(bert.convertTokensToIds(['una', '##ffa', '##ble'])).toEqual([14477, 20961, 3468]);
    const readme = tinyTokenizer(['un', '##af', '##fa', '##ble', '##aff', '##able']);
    expect(readme.tokenize('unaffable')).toEqual(['un', '##aff', '##able']);
  });

  it('splits contractions on the apostrophe: don\'t → don \' t', () => {
    expect(bert.tokenize("Don't")).toEqual(['don', "'", 't']);
    expect(bert.convertTokensToIds(['don', "'", 't'])).toEqual([2123, 1005, 1056]);
  });

  it('"Hugging Face" → 101 17662 2227 102', () => {
    expect(bert.encode('Hugging Face').ids).toEqual([101, 17662, 2227, 102]);
  });
});

describe('basic tokenizer', () => {
  it('lower-cases, strips accents (precomposed or combining) and splits on punctuation', () => {
    expect(bert.basicTokenize('Héllo  WORLD! Cafe\u0301, naïve.')).toEqual(['hello', 'world', '!', 'cafe', ',', 'naive', '.']);
  });

  it('keeps case and accents with lowercase: false', () => {
    const cased = WordPieceTokenizer.fromVocabText(vocabText, { lowercase: false });
    expect(cased.basicTokenize('Héllo WORLD!')).toEqual(['Héllo', 'WORLD', '!']);
  });

  it('removes NUL, U+FFFD, controls, format characters and unassigned code points', () => {
    expect(bert.basicTokenize('a\u0000b\ufffdc\u0007d\u200be\ufeff\u00adf\u0378g')).toEqual(['abcdefg']);
  });

  it('treats tab, newlines, no-break, ideographic and line-separator spaces as whitespace', () => {
    expect(bert.basicTokenize('a\tb\nc\r\nd\u00a0e\u3000f\u2003g\u2028h')).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
  });

  it('puts CJK ideographs (BMP and astral) in words of their own, but not kana or hangul', () => {
    expect(bert.basicTokenize('ab中文cd')).toEqual(['ab', '中', '文', 'cd']);
    expect(bert.basicTokenize('a\u{20000}b')).toEqual(['a', '\u{20000}', 'b']);
    // kana stay one word; the voiced mark of が is a combining mark (U+3099) under NFD, and
    // uncased BERT strips it like an accent: が → か
    expect(bert.basicTokenize('ひらがなカタカナ')).toEqual(['ひらかなカタカナ']);
    // hangul syllables decompose into jamo under NFD, and stay one word
    expect(bert.basicTokenize('한국')).toEqual(['한국'.normalize('NFD')]);
  });

  it('counts ASCII symbols and every Unicode P* character as punctuation, but not math or emoji', () => {
    expect(bert.basicTokenize('a$b+c^d`e|f~g')).toEqual(['a', '$', 'b', '+', 'c', '^', 'd', '`', 'e', '|', 'f', '~', 'g']);
    expect(bert.basicTokenize('x—y“z”…¿')).toEqual(['x', '—', 'y', '“', 'z', '”', '…', '¿']);
    expect(bert.basicTokenize('1±2€3😀4')).toEqual(['1±2€3😀4']);
  });

  it('applies the Greek final-sigma rule when lower-casing (ΟΔΟΣ → οδος)', () => {
    expect(bert.basicTokenize('ΟΔΟΣ ΣΑΣ')).toEqual(['οδος', 'σας']);
  });

  it('keeps special tokens written in the text whole, case-sensitively', () => {
    expect(bert.basicTokenize('a[MASK]b [mask]')).toEqual(['a', '[MASK]', 'b', '[', 'mask', ']']);
    expect(bert.encode('hello [MASK]').ids).toEqual([101, 7592, 103, 102]);
  });

  it('gives no tokens for empty, blank or control-only text', () => {
    for (const text of ['', '   ', '\u0000\u200b\n\t']) expect(bert.tokenize(text), JSON.stringify(text)).toEqual([]);
    expect(bert.encode('').ids).toEqual([101, 102]);
  });
});

describe('greedy longest-match-first WordPiece', () => {
  it('takes the longest vocabulary piece at each position, continuation pieces with ##', () => {
    const tok = tinyTokenizer(['a', 'ab', '##c', '##bc']);
    expect(tok.tokenize('abc')).toEqual(['ab', '##c']);
    expect(tok.convertTokensToIds(tok.tokenize('abc'))).toEqual([6, 7]);
  });

  it('makes the whole word [UNK] when greedy matching gets stuck, even if another split exists', () => {
    // a ##bc would cover "abc", but greedy takes "ab" first and then finds no "##c".
    const tok = tinyTokenizer(['a', 'ab', '##bc']);
    expect(tok.tokenize('abc')).toEqual(['[UNK]']);
    expect(tok.tokenize('abc ab')).toEqual(['[UNK]', 'ab']);
  });

  it('does not match a word-initial piece in continuation position', () => {
    const tok = tinyTokenizer(['a', 'b']);
    expect(tok.tokenize('ab')).toEqual(['[UNK]']);
  });

  it('turns a word of more than 100 characters into [UNK], counting code points after normalization', () => {
    expect(bert.tokenize('a'.repeat(100))).not.toContain('[UNK]');
    expect(bert.tokenize('a'.repeat(101))).toEqual(['[UNK]']);
    // 120 code points raw, 60 once the combining accents are stripped
    expect(bert.tokenize('e\u0301'.repeat(60))).not.toContain('[UNK]');
    // 60 emoji are 120 UTF-16 units but 60 characters: not too long, just unknown
    const tok = tinyTokenizer(['😀', '##😀']);
    expect(tok.tokenize('😀'.repeat(60))).toEqual(['😀', ...Array(59).fill('##😀')]);
  });

  it('maps unknown pieces to [UNK] in convertTokensToIds and rejects out-of-range ids', () => {
    expect(bert.convertTokensToIds(['hello', 'no-such-piece'])).toEqual([7592, 100]);
    expect(() => bert.idToToken(30522)).toThrow(/outside the vocabulary/);
    expect(() => bert.idToToken(-1)).toThrow(/outside the vocabulary/);
  });

  it('gives the same answer from its word cache as on first use', () => {
    const text = 'tokenization tokenization unaffable tokenization';
    const first = bert.tokenize(text);
    expect(bert.tokenize(text)).toEqual(first);
    expect(first).toEqual(['token', '##ization', 'token', '##ization', 'una', '##ffa', '##ble', 'token', '##ization']);
  });
});

describe('encode: special tokens, truncation, padding', () => {
  const tok = tinyTokenizer(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
  // ids: a 5, b 6, ... h 12

  it('builds [CLS] a [SEP] b [SEP] with token types 0 through the first [SEP], then 1', () => {
    const enc = tok.encode('a b', 'c');
    expect(enc.tokens).toEqual(['[CLS]', 'a', 'b', '[SEP]', 'c', '[SEP]']);
    expect(enc.ids).toEqual([2, 5, 6, 3, 7, 3]);
    expect(enc.typeIds).toEqual([0, 0, 0, 0, 1, 1]);
  });

  it('encodes an empty second segment as a pair, as Python does', () => {
    expect(tok.encode('a', '').tokens).toEqual(['[CLS]', 'a', '[SEP]', '[SEP]']);
    expect(tok.encode('a', null).tokens).toEqual(['[CLS]', 'a', '[SEP]']);
  });

  it('truncates a single text from the end and keeps [SEP]', () => {
    expect(tok.encode('a b c d e', null, { maxLength: 4 }).tokens).toEqual(['[CLS]', 'a', 'b', '[SEP]']);
  });

  it('truncates pairs longest-first; on a tie the first segment keeps the extra token', () => {
    // 5 + 5 pieces into 10 - 3 = 7: remove from b, a, b, ... → a keeps 4, b keeps 3
    expect(tok.encode('a b c d e', 'd e f g h', { maxLength: 10 }).tokens).toEqual(['[CLS]', 'a', 'b', 'c', 'd', '[SEP]', 'd', 'e', 'f', '[SEP]']);
    // only the longer one shrinks while it is longer
    expect(tok.encode('a', 'b c d e f g h', { maxLength: 6 }).tokens).toEqual(['[CLS]', 'a', '[SEP]', 'b', 'c', '[SEP]']);
    expect(truncateLongestFirst(['1', '2', '3', '4', '5', '6'], ['x', 'y'], 8)).toEqual([['1', '2', '3'], ['x', 'y']]);
    expect(truncateLongestFirst(['1', '2', '3'], ['x', 'y', 'z'], 3)).toEqual([[], []]);
  });

  it('pads with [PAD] (id of [PAD], type 0, mask 0) to maxLength', () => {
    const enc = tok.encode('a', 'b', { maxLength: 8, padding: true });
    expect(enc.tokens).toEqual(['[CLS]', 'a', '[SEP]', 'b', '[SEP]', '[PAD]', '[PAD]', '[PAD]']);
    expect(enc.ids).toEqual([2, 5, 3, 6, 3, 0, 0, 0]);
    expect(enc.typeIds).toEqual([0, 0, 0, 1, 1, 0, 0, 0]);
    expect(enc.mask).toEqual([1, 1, 1, 1, 1, 0, 0, 0]);
  });

  it('rejects a maxLength with no room for the special tokens', () => {
    expect(() => tok.encode('a', 'b', { maxLength: 2 })).toThrow(/no room for the 3 special tokens/);
    expect(() => tok.encode('a', null, { maxLength: 1 })).toThrow(/no room for the 2 special tokens/);
    expect(() => tok.encode('a', null, { maxLength: 0 })).toThrow(/positive integer/);
  });

  it('encodeBatch lays rows out as (batch, maxLength), padded, with lengths and an f32 mask', () => {
    const batch = tok.encodeBatch(['a b', 'c d e f g h', ''], ['c', null, 'a'], 6);
    expect(Array.from(batch.ids)).toEqual([2, 5, 6, 3, 7, 3, /**/ 2, 7, 8, 9, 10, 3, /**/ 2, 3, 5, 3, 0, 0]);
    expect(Array.from(batch.typeIds)).toEqual([0, 0, 0, 0, 1, 1, /**/ 0, 0, 0, 0, 0, 0, /**/ 0, 0, 1, 1, 0, 0]);
    expect(Array.from(batch.mask)).toEqual([1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 1, 0, 0]);
    expect(Array.from(batch.lengths)).toEqual([6, 6, 4]);
    expect(batch.mask).toBeInstanceOf(Float32Array);
    expect(() => tok.encodeBatch(['a', 'b'], ['c'], 6)).toThrow(/2 texts but 1 pairs/);
  });

  it('pads with the vocabulary\'s own [PAD] id when it is not 0', () => {
    const padLast = new WordPieceTokenizer(['[UNK]', '[CLS]', '[SEP]', '[MASK]', 'a', '[PAD]']);
    expect(padLast.padId).toBe(5);
    expect(Array.from(padLast.encodeBatch(['a'], null, 5).ids)).toEqual([1, 4, 2, 5, 5]);
  });
});

describe('vocabulary parsing and validation', () => {
  it('reads LF or CRLF files, with a BOM and trailing blank lines', () => {
    const text = '\ufeff[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhello\r\n##s\r\n\r\n';
    const tok = WordPieceTokenizer.fromVocabText(text);
    expect(tok.vocabSize).toBe(7);
    expect(tok.encode('Hellos').ids).toEqual([2, 5, 6, 3]);
  });

  it('names the missing special tokens', () => {
    expect(() => WordPieceTokenizer.fromVocabText('[PAD]\n[UNK]\nhello\n')).toThrow(/lacks the special token\(s\) \[CLS\], \[SEP\], \[MASK\]/);
  });

  it('rejects an empty line inside the list and an empty file', () => {
    expect(() => WordPieceTokenizer.fromVocabText('[PAD]\n\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n')).toThrow(/line 2 \(id 1\) is empty/);
    expect(() => WordPieceTokenizer.fromVocabText('')).toThrow(/vocabulary is empty/);
  });
});
