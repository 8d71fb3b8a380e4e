import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatasetInfo, type Example, loadBuiltinDataset, parseJsonlDataset, splitDataset } from '../../src/data/datasets';

const root = join(__dirname, '..', '..');
const dataDir = join(root, 'public', 'data');
const index: DatasetInfo[] = JSON.parse(readFileSync(join(dataDir, 'index.json'), 'utf8'));

/** n examples whose class sizes are `sizes`; text i is unique so examples can be tracked. */
function synthetic(sizes: number[]): Example[] {
  const out: Example[] = [];
  sizes.forEach((size, label) => {
    for (let i = 0; i < size; i++) out.push({ text: `class ${label} example ${i}`, label });
  });
  return out;
}

const countLabels = (examples: Example[], classes: number) => {
  const counts = new Array(classes).fill(0);
  for (const e of examples) counts[e.label]++;
  return counts;
};

describe('splitDataset', () => {
  const examples = synthetic([500, 300, 193, 7]);

  it('the same seed gives the same split; another seed a different one', () => {
    const a = splitDataset(examples, 42);
    const b = splitDataset(examples, 42);
    expect(b).toEqual(a);
    const c = splitDataset(examples, 43);
    expect(c.test.map((e) => e.text)).not.toEqual(a.test.map((e) => e.text));
  });

  it('partitions the examples: every example in exactly one split', () => {
    const { train, dev, test } = splitDataset(examples, 7);
    const all = [...train, ...dev, ...test].map((e) => e.text).sort();
    expect(all).toEqual(examples.map((e) => e.text).sort());
    expect(dev).toHaveLength(100);
    expect(test).toHaveLength(100);
    expect(train).toHaveLength(800);
  });

  it('is stratified: each class holds its share of dev and test to within one example', () => {
    for (const seed of [1, 2, 3]) {
      const split = splitDataset(examples, seed, { dev: 0.15, test: 0.2 });
      const sizes = [500, 300, 193, 7];
      for (const [name, part, fraction] of [['dev', split.dev, 0.15], ['test', split.test, 0.2]] as const) {
        const counts = countLabels(part, 4);
        counts.forEach((count, c) => {
          const expected = sizes[c] * fraction;
          expect(Math.abs(count - expected), `seed ${seed} ${name} class ${c}: ${count} vs ${expected}`).toBeLessThanOrEqual(1);
        });
      }
      expect(split.dev).toHaveLength(150);
      expect(split.test).toHaveLength(200);
    }
  });

  it('shuffles within splits, so they are not sorted by label', () => {
    const { train } = splitDataset(examples, 5);
    const labelRuns = train.reduce((runs, e, i) => runs + (i > 0 && e.label !== train[i - 1].label ? 1 : 0), 0);
    expect(labelRuns).toBeGreaterThan(100);
  });

  it('rejects fractions that leave no training data', () => {
    expect(() => splitDataset(examples, 1, { dev: 0.5, test: 0.5 })).toThrow(/sum to less than 1/);
    expect(() => splitDataset(examples, 1, { dev: -0.1, test: 0.1 })).toThrow(/≥ 0/);
  });
});

describe('built-in datasets in public/data', () => {
  it('index.json lists sentiment, topic and spam with every field', () => {
    expect(index.map((d) => d.id)).toEqual(['sentiment', 'topic', 'spam']);
    for (const info of index) {
      for (const key of ['id', 'name', 'description', 'source', 'license', 'file'] as const) {
        expect(typeof info[key] === 'string' && info[key].length > 0, `${info.id}.${key}`).toBe(true);
      }
      expect(info.description, `${info.id} description states its size`).toContain(String(info.size));
      expect(info.description.includes('\n'), `${info.id} description is one line`).toBe(false);
    }
  });

  for (const info of index) {
    it(`${info.id}: parses, has ${info.size} examples in classes ${info.classes.join('/')}, no empty or repeated texts`, () => {
      const text = readFileSync(join(dataDir, info.file), 'utf8');
      const dataset = parseJsonlDataset(text, info, 1);
      const all = [...dataset.train, ...dataset.dev, ...dataset.test];
      expect(all).toHaveLength(info.size);
      expect(dataset.classes).toEqual(info.classes);
      const counts = countLabels(all, info.classes.length);
      // every class is well represented (the least frequent holds at least 30 % of an even share)
      for (const [c, count] of counts.entries()) {
        expect(count, `${info.id} class ${info.classes[c]}`).toBeGreaterThan((0.3 * info.size) / info.classes.length);
      }
      const empty = all.findIndex((e) => e.text.trim() === '');
      expect(empty, `${info.id}: first empty text`).toBe(-1);
      const lowered = all.map((e) => e.text.toLowerCase());
      expect(new Set(lowered).size, `${info.id}: distinct texts`).toBe(all.length);
      expect(dataset.dev.length).toBe(Math.round(info.size * 0.1));
      expect(dataset.test.length).toBe(Math.round(info.size * 0.1));
    });
  }

  it('the documented class sizes hold: sentiment and topic balanced, spam at its stated ratio', () => {
    const counts = (id: string) => {
      const info = index.find((d) => d.id === id)!;
      const labels = readFileSync(join(dataDir, info.file), 'utf8').trim().split('\n').map((l) => JSON.parse(l).label);
      return info.classes.map((c) => labels.filter((l) => l === c).length);
    };
    const [negative, positive] = counts('sentiment');
    expect(Math.abs(negative - positive)).toBeLessThan(10);
    expect(counts('topic')).toEqual([800, 800, 800, 800]);
    const [ham, spam] = counts('spam');
    const spamShare = Math.round((100 * spam) / (ham + spam));
    expect(index.find((d) => d.id === 'spam')!.description).toContain(`${spamShare}% spam`);
  });

  it('public/data stays under 3 MB and holds LICENSES.md', () => {
    const total = readdirSync(dataDir).reduce((sum, f) => sum + statSync(join(dataDir, f)).size, 0);
    expect(total).toBeLessThan(3 * 1024 * 1024);
    const licenses = readFileSync(join(dataDir, 'LICENSES.md'), 'utf8');
    for (const needle of ['CC BY 4.0', 'Kotzias', 'Francis', 'Kučera', 'redistribution permitted', 'SpamAssassin', 'PDDL']) {
      expect(licenses, needle).toContain(needle);
    }
  });

  it('the files are what scripts/build-datasets.mjs generates (deterministic rebuild matches)', () => {
    const out = execFileSync(process.execPath, [join(root, 'scripts', 'build-datasets.mjs'), '--check'], { encoding: 'utf8' });
    expect(out).toContain('up to date');
  });
});

describe('parseJsonlDataset errors', () => {
  const info: DatasetInfo = {
    id: 'tiny', name: 'tiny', description: 'd', classes: ['a', 'b'], size: 2, source: 's', license: 'l', file: 'tiny.jsonl',
  };
  it('names the line of an unknown label', () => {
    expect(() => parseJsonlDataset('{"text":"x","label":"a"}\n{"text":"y","label":"c"}\n', info, 1)).toThrow(
      /tiny\.jsonl line 2 has label "c", not one of a, b/,
    );
  });
  it('names the line of invalid JSON (a truncated download)', () => {
    expect(() => parseJsonlDataset('{"text":"x","label":"a"}\n{"text":"y","lab', info, 1)).toThrow(/tiny\.jsonl line 2 is not valid JSON/);
  });
  it('reports a count that disagrees with index.json', () => {
    expect(() => parseJsonlDataset('{"text":"x","label":"a"}\n', info, 1)).toThrow(/has 1 examples, index\.json says 2/);
  });
});

describe('loadBuiltinDataset over HTTP', () => {
  let server: Server;
  let baseUrl: string;
  beforeAll(async () => {
    // a real local server, so the default fetch path (URL joining, status checks) is what runs
    server = createServer((request, response) => {
      const name = (request.url ?? '').replace(/^\/data\//, '');
      if (!/^[\w.-]+$/.test(name)) {
        response.writeHead(404).end();
        return;
      }
      try {
        const body = readFileSync(join(dataDir, name));
        response.writeHead(200, { 'content-type': 'application/octet-stream' }).end(body);
      } catch {
        response.writeHead(404, 'Not Found').end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/data`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('loads and splits a dataset; the same seed gives the same split with or without a trailing slash', async () => {
    const a = await loadBuiltinDataset('topic', baseUrl, 11);
    const b = await loadBuiltinDataset('topic', `${baseUrl}/`, 11);
    expect(a.id).toBe('topic');
    expect(a.classes).toEqual(['news', 'religion', 'science', 'romance']);
    expect(a.train.length + a.dev.length + a.test.length).toBe(3200);
    expect(b).toEqual(a);
  });

  it('says which ids exist when asked for an unknown one', async () => {
    await expect(loadBuiltinDataset('nope', baseUrl, 1)).rejects.toThrow(/no built-in dataset "nope" \(available: sentiment, topic, spam\)/);
  });

  it('reports the HTTP status of a missing index', async () => {
    await expect(loadBuiltinDataset('topic', `${baseUrl}/missing`, 1)).rejects.toThrow(/could not fetch .*missing\/index\.json: HTTP 404/);
  });
});
