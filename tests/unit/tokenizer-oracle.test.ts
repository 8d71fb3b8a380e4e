// Agreement of our WordPiece tokenizer with an independent implementation: transformers.js
// (@huggingface/transformers, whose tokenizer is @huggingface/tokenizers) loading a tokenizer.json
// for bert-base-uncased that this test builds from public/vocab.txt, as Hugging Face's
// BertTokenizerFast would save it.
//
// The spec is Python BERT tokenization (Google's tokenization.py, Hugging Face's BertTokenizer and
// BertTokenizerFast). transformers.js departs from it in four places, checked in the last block:
//   1. CJK ideographs outside the BMP (extensions B–F, compatibility supplement, U+20000–U+2FA1F):
//      Python puts spaces around them (_is_chinese_char is tested on code points); transformers.js
//      tests UTF-16 units, never sees them, and glues them to neighbouring letters.
//   2. unassigned code points (category Cn): Python's _is_control is `category.startswith("C")`
//      and the Rust normalizer's is_other() both drop them; transformers.js drops only Cc/Cf/Co/Cs.
//   3. an empty second segment: Python encodes ("a", "") as [CLS] a [SEP] [SEP]; transformers.js
//      treats "" as no pair at all.
//   4. truncation: transformers.js cuts the joined [CLS] a [SEP] b [SEP] at max_length (losing the
//      final [SEP], and all of b first); Python removes tokens from the longer of a and b
//      ('longest_first') and keeps the special tokens. Truncated encodings are therefore compared
//      against the oracle's untruncated pieces cut by Python's closed-form rule (transcribed below).
// Texts that hit 1 or 2 are left out of the direct comparison (and counted, so that the filter
// cannot silently swallow the corpus).
//
// Two places where Python implementations disagree among themselves, for the record: Greek final
// sigma (the slow BertTokenizer lower-cases character by character and never yields "ς"; Google's
// tokenizer, BertTokenizerFast and transformers.js do, and so do we — compared directly here) and
// truncation ties (see truncateLongestFirst in src/data/wordpiece.ts: we follow the slow tokenizer).

import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';
import { WordPieceTokenizer } from '../../src/data/wordpiece';
import { generateTexts, trickyPairs, trickyTexts } from '../fixtures/tokenizer/texts';

const root = join(__dirname, '..', '..');
const vocabText = readFileSync(join(root, 'public', 'vocab.txt'), 'utf8');
const ours = WordPieceTokenizer.fromVocabText(vocabText);

/** tokenizer.json and tokenizer_config.json as the Hub ships them for bert-base-uncased (lowercase true). */
function bertTokenizerFiles(pieces: string[], lowercase: boolean) {
  const vocab: Record<string, number> = {};
  pieces.forEach((piece, id) => (vocab[piece] = id));
  const special = (content: string) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'].map(special),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } },
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } },
        { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: {
        '[CLS]': { id: '[CLS]', ids: [vocab['[CLS]']], tokens: ['[CLS]'] },
        '[SEP]': { id: '[SEP]', ids: [vocab['[SEP]']], tokens: ['[SEP]'] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
  const tokenizerConfig = {
    tokenizer_class: 'BertTokenizer',
    do_lower_case: lowercase,
    tokenize_chinese_chars: true,
    strip_accents: null,
    model_max_length: 512,
    clean_up_tokenization_spaces: true,
    cls_token: '[CLS]',
    sep_token: '[SEP]',
    pad_token: '[PAD]',
    unk_token: '[UNK]',
    mask_token: '[MASK]',
  };
  return { tokenizerJson, tokenizerConfig };
}

/** Python's truncate_sequences for 'longest_first' (tokenization_utils_base.py), transcribed from
 *  its closed form so that it is not the same code as ours: returns how many to drop from each. */
function pythonLongestFirstRemovals(lenIds: number, lenPair: number, numTokensToRemove: number): [number, number] {
  const firstRemove = Math.min(Math.abs(lenPair - lenIds), numTokensToRemove);
  const secondRemove = numTokensToRemove - firstRemove;
  const half = Math.floor(secondRemove / 2);
  return lenIds > lenPair ? [firstRemove + half, secondRemove - half] : [half, firstRemove + secondRemove - half];
}

/** Python (not transformers.js) semantics for a truncated encoding, built from the oracle's pieces. */
function pythonTruncatedIds(oracle: PreTrainedTokenizer, text: string, pair: string | null, maxLength: number): number[] {
  const a = oracle.encode(text, { add_special_tokens: false });
  const cls = oracle.convert_tokens_to_ids('[CLS]') as number;
  const sep = oracle.convert_tokens_to_ids('[SEP]') as number;
  if (pair === null) return [cls, ...a.slice(0, Math.min(a.length, maxLength - 2)), sep];
  const b = oracle.encode(pair, { add_special_tokens: false });
  const excess = Math.max(0, a.length + b.length + 3 - maxLength);
  const [dropA, dropB] = pythonLongestFirstRemovals(a.length, b.length, excess);
  return [cls, ...a.slice(0, a.length - dropA), sep, ...b.slice(0, b.length - dropB), sep];
}

/** Characters where transformers.js is known to depart from Python (header, items 1 and 2). */
const ASTRAL_CJK = /[\u{20000}-\u{2A6DF}\u{2A700}-\u{2B73F}\u{2B740}-\u{2B81F}\u{2B820}-\u{2CEAF}\u{2F800}-\u{2FA1F}]/u;
const UNASSIGNED = /\p{Cn}/u;
const oracleFollowsPython = (text: string) => !ASTRAL_CJK.test(text) && !UNASSIGNED.test(text);

/** A sample of real mail and prose from the corpora installed as devDependencies: headers,
 *  HTML, URLs, addresses, quoted-printable, and 19th-century English. Deterministic: sorted
 *  file lists, every k-th file, texts cut into pieces of at most 2,000 characters. */
function corpusTexts(): string[] {
  const texts: string[] = [];
  const spamDir = join(root, 'node_modules', '@stdlib', 'datasets-spam-assassin', 'data');
  for (const group of ['easy-ham-1', 'hard-ham-1', 'spam-2']) {
    const files = readdirSync(join(spamDir, group)).filter((f) => f.endsWith('.txt')).sort();
    for (let i = 0; i < files.length && texts.length < 120; i += Math.ceil(files.length / 40)) {
      texts.push(readFileSync(join(spamDir, group, files[i]), 'latin1').slice(0, 2000));
    }
  }
  const mobyDir = join(root, 'node_modules', '@stdlib', 'datasets-moby-dick', 'data');
  for (const chapter of ['etymology', 'extracts', 'chapter_1', 'chapter_42']) {
    const chapterText = readFileSync(join(mobyDir, `${chapter}.txt`), 'utf8');
    for (let at = 0; at < chapterText.length && at < 20_000; at += 2000) texts.push(chapterText.slice(at, at + 2000));
  }
  return texts;
}

function describeMismatch(text: string, ourTokens: string[], oracleTokens: string[]): string {
  let at = 0;
  while (at < ourTokens.length && ourTokens[at] === oracleTokens[at]) at++;
  return (
    `text ${JSON.stringify(text.length > 300 ? text.slice(0, 300) + '…' : text)}\n` +
    `  first difference at token ${at}: ours ${JSON.stringify(ourTokens.slice(at, at + 8))}, ` +
    `transformers.js ${JSON.stringify(oracleTokens.slice(at, at + 8))}`
  );
}

let oracle: PreTrainedTokenizer;
let oracleCased: PreTrainedTokenizer;
let modelDir: string;

beforeAll(async () => {
  // Load through the same path an app would use, from local files only.
  modelDir = mkdtempSync(join(tmpdir(), 'wordpiece-oracle-'));
  const pieces = ours.pieces.slice();
  for (const [name, lowercase] of [['bert-base-uncased', true], ['bert-uncased-vocab-no-lowercase', false]] as const) {
    const { tokenizerJson, tokenizerConfig } = bertTokenizerFiles(pieces, lowercase);
    mkdirSync(join(modelDir, name));
    writeFileSync(join(modelDir, name, 'tokenizer.json'), JSON.stringify(tokenizerJson));
    writeFileSync(join(modelDir, name, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  }
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useBrowserCache = false;
  env.useFSCache = false;
  env.localModelPath = modelDir;
  oracle = await AutoTokenizer.from_pretrained('bert-base-uncased');
  oracleCased = await AutoTokenizer.from_pretrained('bert-uncased-vocab-no-lowercase');
});

afterAll(() => {
  if (modelDir) rmSync(modelDir, { recursive: true, force: true });
});

function expectSameAsOracle(texts: string[], tokenizer: WordPieceTokenizer, reference: () => PreTrainedTokenizer) {
  const mismatches: string[] = [];
  for (const text of texts) {
    const ourIds = tokenizer.encode(text).ids;
    const oracleIds = reference().encode(text);
    if (ourIds.join(',') !== oracleIds.join(',')) {
      mismatches.push(describeMismatch(text, tokenizer.tokenize(text), reference().tokenize(text)));
    }
  }
  expect(mismatches.length, `${mismatches.length} of ${texts.length} texts differ:\n${mismatches.slice(0, 5).join('\n')}`).toBe(0);
}

describe('WordPiece agrees with transformers.js on bert-base-uncased', () => {
  const generated = generateTexts(20240611, 400);
  const corpus = corpusTexts();

  it('loaded the oracle from the local tokenizer.json with the shipped vocabulary', () => {
    expect(oracle.get_vocab().size).toBe(30522);
    expect(oracle.encode('Hello, world!')).toEqual([101, 7592, 1010, 2088, 999, 102]);
  });

  it('has at least 300 comparable texts, and the deviation filter drops only the known cases', () => {
    const all = [...trickyTexts, ...generated, ...corpus];
    const dropped = all.filter((t) => !oracleFollowsPython(t));
    // the three hand-written deviation cases, nothing from the generator or the corpora
    expect(dropped).toEqual(['\u{20000}\u{2a700}\u{2b740}\u{2b820}\u{2f800} astral ideographs', 'a\u{20000}b', 'unassigned\u0378code point']);
    expect(all.length - dropped.length).toBeGreaterThanOrEqual(300);
  });

  it('gives the same ids for every hand-written tricky text', () => {
    expectSameAsOracle(trickyTexts.filter(oracleFollowsPython), ours, () => oracle);
  });

  it('gives the same ids for 400 generated texts (scripts, controls, whitespace, marks, long words)', () => {
    expectSameAsOracle(generated.filter(oracleFollowsPython), ours, () => oracle);
  });

  it('gives the same ids for real mail (headers, HTML, URLs) and prose from the corpora', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(100);
    expectSameAsOracle(corpus, ours, () => oracle);
  });

  it('gives the same ids and token types for sentence pairs', () => {
    const pool = generateTexts(7, 300);
    const pairs: [string, string][] = [...trickyPairs.filter(([, b]) => b !== ''), ...Array.from({ length: 150 }, (_, i): [string, string] => [pool[2 * i], pool[2 * i + 1]])]
      .filter(([a, b]) => oracleFollowsPython(a) && oracleFollowsPython(b) && b !== '');
    const mismatches: string[] = [];
    for (const [a, b] of pairs) {
      const enc = ours.encode(a, b);
      const ref = oracle._call(a, { text_pair: b, return_tensor: false }) as unknown as { input_ids: number[]; token_type_ids: number[]; attention_mask: number[] };
      if (enc.ids.join(',') !== ref.input_ids.join(',') || enc.typeIds.join(',') !== ref.token_type_ids.join(',') || enc.mask.join(',') !== ref.attention_mask.join(',')) {
        mismatches.push(`pair ${JSON.stringify([a, b])}\n  ours ${enc.ids} / ${enc.typeIds}\n  transformers.js ${ref.input_ids} / ${ref.token_type_ids}`);
      }
    }
    expect(pairs.length).toBeGreaterThanOrEqual(150);
    expect(mismatches.length, `${mismatches.length} of ${pairs.length} pairs differ:\n${mismatches.slice(0, 3).join('\n')}`).toBe(0);
  });

  it('truncates single texts and pairs like Python longest_first, from the oracle pieces', () => {
    const texts = generateTexts(99, 240).filter(oracleFollowsPython);
    const mismatches: string[] = [];
    let truncatedCases = 0;
    for (let i = 0; i + 1 < texts.length; i += 2) {
      for (const maxLength of [5, 8, 13, 32]) {
        for (const pair of [null, texts[i + 1]]) {
          const expected = pythonTruncatedIds(oracle, texts[i], pair, maxLength);
          const enc = ours.encode(texts[i], pair, { maxLength });
          if (enc.ids.length < ours.encode(texts[i], pair).ids.length) truncatedCases++;
          if (enc.ids.join(',') !== expected.join(',')) {
            mismatches.push(`maxLength ${maxLength}, ${JSON.stringify([texts[i], pair])}\n  ours ${enc.ids}\n  python ${expected}`);
          }
        }
      }
    }
    expect(truncatedCases, 'the truncation comparison must exercise truncation').toBeGreaterThan(200);
    expect(mismatches.length, `${mismatches.length} truncations differ:\n${mismatches.slice(0, 3).join('\n')}`).toBe(0);
  });

  it('agrees with the cased configuration too (lowercase: false, no accent stripping)', () => {
    const cased = WordPieceTokenizer.fromVocabText(vocabText, { lowercase: false });
    expectSameAsOracle([...trickyTexts, ...generated.slice(0, 150)].filter(oracleFollowsPython), cased, () => oracleCased);
  });
});

describe('where transformers.js departs from Python, we follow Python', () => {
  it('astral CJK ideographs: Python spaces them out, transformers.js glues them into the word', () => {
    // Python: basic tokens ["a", "𠀀", "b"]; 𠀀 is not in the vocabulary.
    expect(ours.encode('a\u{20000}b').tokens).toEqual(['[CLS]', 'a', '[UNK]', 'b', '[SEP]']);
    expect(oracle.tokenize('a\u{20000}b'), 'transformers.js now follows Python here: compare directly').toEqual(['[UNK]']);
  });

  it('unassigned code points: Python drops them as control characters, transformers.js keeps them', () => {
    expect(ours.tokenize('unassigned\u0378code')).toEqual(ours.tokenize('unassignedcode'));
    expect(oracle.tokenize('unassigned\u0378code'), 'transformers.js now follows Python here: compare directly').toEqual(['[UNK]']);
  });

  it('an empty second segment: Python keeps the pair shape, transformers.js drops it', () => {
    expect(ours.encode('is it raining?', '').tokens).toEqual(['[CLS]', 'is', 'it', 'raining', '?', '[SEP]', '[SEP]']);
    expect(ours.encode('is it raining?', '').typeIds).toEqual([0, 0, 0, 0, 0, 0, 1]);
    expect(oracle.encode('is it raining?', { text_pair: '' }), 'transformers.js now follows Python here').toEqual([101, 2003, 2009, 24057, 1029, 102]);
  });

  it('truncation: Python trims the longer segment and keeps [SEP]; transformers.js cuts the joined sequence', () => {
    const a = 'one two three four five six';
    const b = 'seven eight';
    // Python, max_length 8 = 3 special + 5: a (6 pieces) loses 3 by longest_first: 3 and 2 remain.
    const expected = ['[CLS]', 'one', 'two', 'three', '[SEP]', 'seven', 'eight', '[SEP]'];
    expect(ours.encode(a, b, { maxLength: 8 }).tokens).toEqual(expected);
    expect(pythonTruncatedIds(oracle, a, b, 8)).toEqual(ours.convertTokensToIds(expected));
    const joinedCut = oracle._call(a, { text_pair: b, truncation: true, max_length: 8, return_tensor: false }) as unknown as { input_ids: number[] };
    expect(joinedCut.input_ids, 'transformers.js now truncates like Python: compare directly').toEqual(
      ours.convertTokensToIds(['[CLS]', 'one', 'two', 'three', 'four', 'five', 'six', '[SEP]']),
    );
  });
});
