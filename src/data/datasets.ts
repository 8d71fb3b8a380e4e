// Classification datasets: the examples, their class names, and a seeded train/dev/test split.
// The built-in ones live in public/data as JSONL (written by scripts/build-datasets.mjs) and are
// listed in public/data/index.json; user files come in through import.ts. DOM-free: runs in the worker.

import { Rng } from '../train/rng';

/** One labelled example; `label` indexes the dataset's `classes`. */
export interface Example {
  text: string;
  /** second segment for sentence-pair tasks (token type 1) */
  textPair?: string;
  label: number;
}

export interface Dataset {
  id: string;
  name: string;
  description: string;
  classes: string[];
  train: Example[];
  dev: Example[];
  test: Example[];
}

/** One entry of public/data/index.json. */
export interface DatasetInfo {
  id: string;
  name: string;
  /** one line for the UI: what, size, classes, source */
  description: string;
  classes: string[];
  /** number of examples in `file` */
  size: number;
  source: string;
  license: string;
  /** file name relative to index.json */
  file: string;
}

export interface SplitFractions {
  dev: number;
  test: number;
}

/**
 * Largest-remainder apportionment: how many of `total` picks each class gets so that shares follow
 * the class sizes and the counts add up to exactly `total` (rounding each class separately can
 * lose or gain whole examples on small datasets). Ties go to the lower class index, so the result
 * depends only on the counts.
 */
function apportion(classSizes: number[], total: number): number[] {
  const n = classSizes.reduce((a, b) => a + b, 0);
  if (n === 0 || total === 0) return classSizes.map(() => 0);
  const exact = classSizes.map((size) => (size * total) / n);
  const counts = exact.map(Math.floor);
  let left = total - counts.reduce((a, b) => a + b, 0);
  const order = exact
    .map((e, c) => ({ c, remainder: e - Math.floor(e) }))
    .sort((a, b) => b.remainder - a.remainder || a.c - b.c);
  for (let k = 0; left > 0 && k < order.length; k++) {
    const c = order[k].c;
    if (counts[c] < classSizes[c]) {
      counts[c]++;
      left--;
    }
  }
  return counts;
}

/**
 * Seeded split, stratified by label: every split keeps the class proportions of the whole (up to
 * one example per class), and the same examples with the same seed always give the same split.
 * Dev and test get round(n·fraction) examples each; each split comes out shuffled.
 */
export function splitDataset(
  examples: Example[],
  seed: number,
  fractions: SplitFractions = { dev: 0.1, test: 0.1 },
): { train: Example[]; dev: Example[]; test: Example[] } {
  const { dev: devFraction, test: testFraction } = fractions;
  if (!(devFraction >= 0 && testFraction >= 0 && devFraction + testFraction < 1)) {
    throw new Error(`split fractions must be ≥ 0 and sum to less than 1 (got dev ${devFraction}, test ${testFraction})`);
  }
  const byClass: Example[][] = [];
  for (const example of examples) (byClass[example.label] ??= []).push(example);
  for (let c = 0; c < byClass.length; c++) byClass[c] ??= [];
  const sizes = byClass.map((group) => group.length);

  const n = examples.length;
  const testCounts = apportion(sizes, Math.round(n * testFraction));
  const devCounts = apportion(
    sizes.map((size, c) => size - testCounts[c]),
    Math.round(n * devFraction),
  );

  const rng = new Rng(seed);
  const train: Example[] = [];
  const dev: Example[] = [];
  const test: Example[] = [];
  byClass.forEach((group, c) => {
    const order = rng.shuffle(group.slice());
    test.push(...order.slice(0, testCounts[c]));
    dev.push(...order.slice(testCounts[c], testCounts[c] + devCounts[c]));
    train.push(...order.slice(testCounts[c] + devCounts[c]));
  });
  // grouped by class above; mix them so a dev preview or an unshuffled pass is not sorted by label
  rng.shuffle(train);
  rng.shuffle(dev);
  rng.shuffle(test);
  return { train, dev, test };
}

const textKeys = ['text', 'sentence', 'sentence1', 'text_a'];
const pairKeys = ['text_pair', 'sentence2', 'text_b'];

/**
 * Parses a built-in dataset file (one {"text", "label"} object a line, label = class name) and
 * splits it. Errors name the line, since a truncated download shows up as a bad last line.
 */
export function parseJsonlDataset(text: string, info: DatasetInfo, seed: number): Dataset {
  const classIndex = new Map(info.classes.map((name, i) => [name, i]));
  const examples: Example[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (!line) continue;
    const where = `${info.file} line ${i + 1}`;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch (e) {
      throw new Error(`${where} is not valid JSON: ${(e as Error).message}`);
    }
    const textKey = textKeys.find((k) => typeof row[k] === 'string');
    const exampleText = textKey ? (row[textKey] as string) : '';
    if (!exampleText.trim()) throw new Error(`${where} has no text`);
    const rawLabel = row.label;
    const label =
      typeof rawLabel === 'string'
        ? classIndex.get(rawLabel)
        : typeof rawLabel === 'number' && Number.isInteger(rawLabel) && rawLabel >= 0 && rawLabel < info.classes.length
          ? rawLabel
          : undefined;
    if (label === undefined) {
      throw new Error(`${where} has label ${JSON.stringify(rawLabel)}, not one of ${info.classes.join(', ')}`);
    }
    const example: Example = { text: exampleText, label };
    const pairKey = pairKeys.find((k) => typeof row[k] === 'string');
    if (pairKey) example.textPair = row[pairKey] as string;
    examples.push(example);
  }
  if (examples.length !== info.size) {
    throw new Error(`${info.file} has ${examples.length} examples, index.json says ${info.size} (truncated download?)`);
  }
  return {
    id: info.id,
    name: info.name,
    description: info.description,
    classes: info.classes.slice(),
    ...splitDataset(examples, seed),
  };
}

/** `base` + `name` with exactly one slash between them; base may be absolute, relative or ''. */
function joinUrl(base: string, name: string): string {
  if (!base) return name;
  return base.endsWith('/') ? base + name : `${base}/${name}`;
}

async function fetchText(url: string, fetchFn: typeof fetch): Promise<string> {
  let response: Response;
  try {
    response = await fetchFn(url);
  } catch (e) {
    throw new Error(`could not fetch ${url}: ${(e as Error).message}`);
  }
  if (!response.ok) throw new Error(`could not fetch ${url}: HTTP ${response.status} ${response.statusText}`);
  return response.text();
}

/** Reads index.json under `baseUrl` (e.g. '/data/'). */
export async function listBuiltinDatasets(baseUrl: string, fetchFn: typeof fetch = fetch): Promise<DatasetInfo[]> {
  const url = joinUrl(baseUrl, 'index.json');
  const text = await fetchText(url, fetchFn);
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (e) {
    throw new Error(`${url} is not valid JSON: ${(e as Error).message}`);
  }
  if (!Array.isArray(index)) throw new Error(`${url} should hold a list of datasets`);
  return index as DatasetInfo[];
}

/** Fetches index.json and the dataset's file from `baseUrl`, parses and splits it with `seed`. */
export async function loadBuiltinDataset(
  id: string,
  baseUrl: string,
  seed: number,
  fetchFn: typeof fetch = fetch,
): Promise<Dataset> {
  const index = await listBuiltinDatasets(baseUrl, fetchFn);
  const info = index.find((entry) => entry.id === id);
  if (!info) throw new Error(`no built-in dataset "${id}" (available: ${index.map((e) => e.id).join(', ')})`);
  const text = await fetchText(joinUrl(baseUrl, info.file), fetchFn);
  return parseJsonlDataset(text, info, seed);
}
