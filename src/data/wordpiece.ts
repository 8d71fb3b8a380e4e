// BERT's WordPiece tokenizer (uncased by default), as Google's tokenization.py and Hugging Face's
// BertTokenizer / BertTokenizerFast do it:
//   1. special tokens written literally in the text ("[MASK]", "[SEP]", ...) are kept whole;
//   2. basic tokenizer: drop NUL, U+FFFD and control/format/unassigned characters, map whitespace
//      to spaces, put spaces around CJK ideographs, lower-case, NFD and drop combining marks (Mn),
//      split on whitespace and on punctuation;
//   3. WordPiece: greedy longest-match-first against the vocabulary, continuation pieces prefixed
//      with "##"; a word longer than 100 characters, or one that cannot be covered, is [UNK].
// Then [CLS] a [SEP] (b [SEP]), longest-first truncation and [PAD] padding.
// Where Hugging Face's implementations disagree with each other the choice is written at the spot
// (lower-casing of a final sigma, truncation ties). No DOM and no Node APIs: this runs in the worker.

/** ids, token types and attention mask of one encoded text or pair; all arrays have one length. */
export interface Encoding {
  ids: number[];
  typeIds: number[];
  mask: number[];
  tokens: string[];
}

/** a padded batch, row-major (batch, maxLength); `lengths` are the unpadded lengths. */
export interface BatchEncoding {
  ids: Uint32Array;
  typeIds: Uint32Array;
  mask: Float32Array;
  lengths: Uint32Array;
}

export interface WordPieceOptions {
  /** lower-case and strip accents (bert-*-uncased); default true */
  lowercase?: boolean;
}

export interface EncodeOptions {
  /** truncate to this many tokens, special tokens included ('longest_first' for pairs) */
  maxLength?: number;
  /** pad with [PAD] up to maxLength (without maxLength there is nothing to pad to) */
  padding?: boolean;
}

const PAD = '[PAD]', UNK = '[UNK]', CLS = '[CLS]', SEP = '[SEP]', MASK = '[MASK]';
const SPECIAL_TOKENS = [PAD, UNK, CLS, SEP, MASK];
const CONTINUATION_PREFIX = '##';
/** BERT's max_input_chars_per_word: longer words (in code points) become [UNK] without matching. */
const MAX_INPUT_CHARS_PER_WORD = 100;
/** words memoised per tokenizer; the cache is dropped when it grows past this many entries. */
const WORD_CACHE_LIMIT = 100_000;

// Character classes, by code point. Python's unicodedata and JavaScript's \p{..} both follow the
// Unicode tables of their runtime; the oracle test runs both sides on the same engine.

/** Python's _is_control: every category C* (Cc, Cf, Cs, Co and unassigned Cn) except \t \n \r,
 *  which count as whitespace. Zero-width space U+200B and BOM U+FEFF are Cf, so they vanish. */
const CONTROL = /^\p{C}$/u;
/** Python's _is_whitespace (Zs and \t \n \r) plus the line/paragraph separators U+2028/U+2029:
 *  Python keeps those two through clean-up but its str.split() then splits on them, and the fast
 *  tokenizer maps them to spaces directly; either way they separate words. */
const WHITESPACE = /^[\t\n\r\p{Zs}\u2028\u2029]$/u;
/** Python's _is_punctuation: all ASCII non-alphanumeric printable characters (so $ + < = > ^ ` | ~
 *  count, though Unicode files them as symbols) and every Unicode P* category. */
const PUNCTUATION = /^[!-/:-@[-`{-~\p{P}]$/u;
const COMBINING_MARK = /\p{Mn}/gu;

enum CharClass { Letter, Space, Punctuation, Removed }

/** class of each ASCII code point, so the common case never runs a regular expression. */
const ASCII_CLASS: CharClass[] = Array.from({ length: 128 }, (_, cp) => {
  const ch = String.fromCharCode(cp);
  if (cp === 9 || cp === 10 || cp === 13 || cp === 32) return CharClass.Space;
  if (cp < 32 || cp === 127) return CharClass.Removed;
  if (PUNCTUATION.test(ch)) return CharClass.Punctuation;
  return CharClass.Letter;
});

/** Cleaning-stage class: Removed, Space, or Letter (punctuation is split later, after NFD). */
function cleanClass(cp: number, ch: string): CharClass {
  if (cp < 128) return ASCII_CLASS[cp] === CharClass.Punctuation ? CharClass.Letter : ASCII_CLASS[cp];
  if (cp === 0xfffd || CONTROL.test(ch)) return CharClass.Removed;
  if (WHITESPACE.test(ch)) return CharClass.Space;
  return CharClass.Letter;
}

/** Splitting-stage class of a normalized character: Space, Punctuation or Letter. */
function splitClass(cp: number, ch: string): CharClass {
  // (ASCII controls never get here: cleaning removed them)
  if (cp < 128) return ASCII_CLASS[cp];
  if (WHITESPACE.test(ch)) return CharClass.Space;
  if (PUNCTUATION.test(ch)) return CharClass.Punctuation;
  return CharClass.Letter;
}

/** BERT's _is_chinese_char: the CJK Unified Ideographs blocks (with extensions A–E) and the CJK
 *  compatibility ideographs. Hiragana, katakana and hangul are not in it: they form words like
 *  Latin letters do (hangul then decomposes into jamo under NFD). */
export function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export class WordPieceTokenizer {
  readonly vocabSize: number;
  readonly padId: number;
  readonly unkId: number;
  readonly clsId: number;
  readonly sepId: number;
  readonly maskId: number;
  readonly lowercase: boolean;
  /** the vocabulary in id order */
  readonly pieces: readonly string[];

  private readonly pieceToId = new Map<string, number>();
  /** longest piece in code points: no longer candidate can match, so the search starts there */
  private readonly maxPieceChars: number;
  private readonly specialTokenPattern: RegExp;
  private readonly wordCache = new Map<string, string[]>();

  /**
   * Parses vocab.txt: one piece per line, the line index is the id. Accepts LF or CRLF, a leading
   * BOM and trailing blank lines; rejects an empty line inside the list and a vocabulary without
   * [PAD], [UNK], [CLS], [SEP] and [MASK].
   */
  static fromVocabText(text: string, opts: WordPieceOptions = {}): WordPieceTokenizer {
    const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    return new WordPieceTokenizer(lines, opts);
  }

  constructor(pieces: readonly string[], opts: WordPieceOptions = {}) {
    if (pieces.length === 0) throw new Error('vocabulary is empty');
    this.lowercase = opts.lowercase ?? true;
    this.pieces = pieces.slice();
    let maxPieceChars = 1;
    pieces.forEach((piece, id) => {
      if (piece.length === 0) throw new Error(`vocabulary line ${id + 1} (id ${id}) is empty`);
      // Like Hugging Face's load_vocab, a repeated piece maps to its last id.
      this.pieceToId.set(piece, id);
      const chars = Array.from(piece).length;
      if (chars > maxPieceChars) maxPieceChars = chars;
    });
    this.maxPieceChars = maxPieceChars;
    const missing = SPECIAL_TOKENS.filter((t) => !this.pieceToId.has(t));
    if (missing.length > 0) throw new Error(`vocabulary lacks the special token(s) ${missing.join(', ')}`);
    this.vocabSize = pieces.length;
    this.padId = this.pieceToId.get(PAD)!;
    this.unkId = this.pieceToId.get(UNK)!;
    this.clsId = this.pieceToId.get(CLS)!;
    this.sepId = this.pieceToId.get(SEP)!;
    this.maskId = this.pieceToId.get(MASK)!;
    this.specialTokenPattern = new RegExp(`(${SPECIAL_TOKENS.map(escapeRegExp).join('|')})`);
  }

  /** Basic tokenizer only: clean, CJK spacing, lower-case and strip accents, split on whitespace
   *  and punctuation. Special tokens written in the text come out whole. */
  basicTokenize(text: string): string[] {
    const words: string[] = [];
    for (const [segment, special] of this.splitOnSpecialTokens(text)) {
      if (special) words.push(segment);
      else this.basicWords(segment, words);
    }
    return words;
  }

  /** WordPiece pieces of a text (no [CLS]/[SEP]). */
  tokenize(text: string): string[] {
    const pieces: string[] = [];
    for (const [segment, special] of this.splitOnSpecialTokens(text)) {
      if (special) {
        pieces.push(segment);
        continue;
      }
      for (const word of this.basicWords(segment, [])) {
        for (const piece of this.wordPieces(word)) pieces.push(piece);
      }
    }
    return pieces;
  }

  /** ids of pieces; a piece not in the vocabulary maps to [UNK]. */
  convertTokensToIds(tokens: string[]): number[] {
    return tokens.map((t) => this.pieceToId.get(t) ?? this.unkId);
  }

  idToToken(id: number): string {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    }
    return this.pieces[id];
  }

  /**
   * [CLS] a [SEP] for one text, [CLS] a [SEP] b [SEP] for a pair (type ids 0 up to and including
   * the first [SEP], 1 after it). `pair` null or undefined means no second segment; an empty
   * string is an empty second segment, as in Python (`[CLS] a [SEP] [SEP]`).
   */
  encode(text: string, pair?: string | null, opts: EncodeOptions = {}): Encoding {
    const { maxLength, padding = false } = opts;
    const [first, second] = this.truncatedPieces(text, pair, maxLength);
    const tokens = second === null ? [CLS, ...first, SEP] : [CLS, ...first, SEP, ...second, SEP];
    const ids = this.convertTokensToIds(tokens);
    const typeIds = tokens.map((_, i) => (i < first.length + 2 ? 0 : 1));
    const mask = tokens.map(() => 1);
    if (padding && maxLength !== undefined) {
      for (let i = tokens.length; i < maxLength; i++) {
        tokens.push(PAD);
        ids.push(this.padId);
        typeIds.push(0);
        mask.push(0);
      }
    }
    return { ids, typeIds, mask, tokens };
  }

  /** Encodes texts (and optional pairs; a null entry means no pair) into padded (batch, maxLength)
   *  arrays ready to upload: ids and type ids as u32, the attention mask as f32 (1 real, 0 pad). */
  encodeBatch(texts: string[], pairs: (string | null)[] | null, maxLength: number): BatchEncoding {
    if (pairs !== null && pairs.length !== texts.length) {
      throw new Error(`encodeBatch: ${texts.length} texts but ${pairs.length} pairs`);
    }
    if (!Number.isInteger(maxLength) || maxLength < 1) throw new RangeError(`maxLength must be a positive integer, got ${maxLength}`);
    const batch = texts.length;
    const out: BatchEncoding = {
      ids: new Uint32Array(batch * maxLength),
      typeIds: new Uint32Array(batch * maxLength),
      mask: new Float32Array(batch * maxLength),
      lengths: new Uint32Array(batch),
    };
    if (this.padId !== 0) out.ids.fill(this.padId);
    for (let row = 0; row < batch; row++) {
      const [first, second] = this.truncatedPieces(texts[row], pairs ? pairs[row] : null, maxLength);
      // written in place: this runs over whole datasets, so no per-row Encoding objects
      let at = row * maxLength;
      const put = (id: number, typeId: number) => {
        out.ids[at] = id;
        out.typeIds[at] = typeId;
        out.mask[at] = 1;
        at++;
      };
      put(this.clsId, 0);
      for (const piece of first) put(this.pieceToId.get(piece) ?? this.unkId, 0);
      put(this.sepId, 0);
      if (second !== null) {
        for (const piece of second) put(this.pieceToId.get(piece) ?? this.unkId, 1);
        put(this.sepId, 1);
      }
      out.lengths[row] = at - row * maxLength;
    }
    return out;
  }

  /** the pieces of text and pair, truncated to fit maxLength with the special tokens */
  private truncatedPieces(text: string, pair: string | null | undefined, maxLength: number | undefined): [string[], string[] | null] {
    if (maxLength !== undefined && (!Number.isInteger(maxLength) || maxLength < 1)) {
      throw new RangeError(`maxLength must be a positive integer, got ${maxLength}`);
    }
    const first = this.tokenize(text);
    const second = pair === null || pair === undefined ? null : this.tokenize(pair);
    return maxLength === undefined ? [first, second] : truncateLongestFirst(first, second, maxLength);
  }

  /** [segment, isSpecialToken] in text order; special tokens match case-sensitively on the raw
   *  text (Hugging Face marks them normalized: false), so "[mask]" is ordinary text. */
  private splitOnSpecialTokens(text: string): [string, boolean][] {
    // split() with a capturing group puts the separators at the odd indices.
    return text.split(this.specialTokenPattern).map((segment, i): [string, boolean] => [segment, i % 2 === 1]).filter(([segment]) => segment.length > 0);
  }

  /** The basic tokenizer on text that holds no special token; appends its words to `words`. */
  private basicWords(text: string, words: string[]): string[] {
    let cleaned = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      const cls = cleanClass(cp, ch);
      if (cls === CharClass.Removed) continue;
      if (cls === CharClass.Space) cleaned += ' ';
      else if (isChineseChar(cp)) cleaned += ' ' + ch + ' ';
      else cleaned += ch;
    }
    if (this.lowercase) {
      // Whole-text lower-casing applies the context rule for Greek final sigma (ΟΔΟΣ → οδος) as
      // Google's BERT (str.lower per word) and the fast tokenizer do. Hugging Face's slow Python
      // BertTokenizer lower-cases one character at a time first (PreTrainedTokenizer.tokenize,
      // to protect special tokens) and so gives "οδοσ"; we follow the former. Lower-case before
      // NFD as Python does: "İ" lower-cases to "i" + U+0307, whose mark NFD-stripping then drops.
      cleaned = cleaned.toLowerCase().normalize('NFD').replace(COMBINING_MARK, '');
    }
    let word = '';
    for (const ch of cleaned) {
      const cls = splitClass(ch.codePointAt(0)!, ch);
      if (cls === CharClass.Letter) {
        word += ch;
        continue;
      }
      if (word.length > 0) words.push(word);
      word = '';
      if (cls === CharClass.Punctuation) words.push(ch);
    }
    if (word.length > 0) words.push(word);
    return words;
  }

  /** Greedy longest-match-first WordPiece of one word (basic-tokenized, no special token). */
  private wordPieces(word: string): string[] {
    const cached = this.wordCache.get(word);
    if (cached) return cached;
    const chars = Array.from(word); // code points: an emoji or astral ideograph is one character
    let pieces: string[] = [];
    if (chars.length > MAX_INPUT_CHARS_PER_WORD) {
      pieces = [UNK];
    } else {
      let start = 0;
      while (start < chars.length) {
        let end = Math.min(chars.length, start + this.maxPieceChars);
        let match: string | null = null;
        for (; end > start; end--) {
          const candidate = (start > 0 ? CONTINUATION_PREFIX : '') + chars.slice(start, end).join('');
          if (this.pieceToId.has(candidate)) {
            match = candidate;
            break;
          }
        }
        // One uncovered stretch makes the whole word [UNK], not just that stretch.
        if (match === null) {
          pieces = [UNK];
          break;
        }
        pieces.push(match);
        start = end;
      }
    }
    if (this.wordCache.size >= WORD_CACHE_LIMIT) this.wordCache.clear();
    this.wordCache.set(word, pieces);
    return pieces;
  }
}

/**
 * Truncates to fit `maxLength` tokens including [CLS]/[SEP] (2 for one text, 3 for a pair).
 * Pairs use Hugging Face's 'longest_first': remove the last token of the longer sequence, one at
 * a time; on a tie remove from the second. This is Google's _truncate_seq_pair and the slow Python
 * tokenizer's closed form of it; with an odd budget the first sequence keeps the extra token.
 * (The Rust fast tokenizer gives that extra token to the second sequence when both start equally
 * long; we follow the Python reference.)
 */
export function truncateLongestFirst(first: string[], second: string[] | null, maxLength: number): [string[], string[] | null] {
  const specials = second === null ? 2 : 3;
  const budget = maxLength - specials;
  if (budget < 0) {
    throw new RangeError(`maxLength ${maxLength} leaves no room for the ${specials} special tokens of ${second === null ? 'a single text' : 'a pair'}`);
  }
  if (second === null) return [first.length > budget ? first.slice(0, budget) : first, null];
  let keepFirst = first.length;
  let keepSecond = second.length;
  while (keepFirst + keepSecond > budget) {
    if (keepFirst > keepSecond) keepFirst--;
    else keepSecond--;
  }
  return [first.slice(0, keepFirst), second.slice(0, keepSecond)];
}
