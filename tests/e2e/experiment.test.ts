// The experiment runner end to end: `node scripts/experiment.mjs` trains two tiny real jobs on the
// Engine in headless Chromium. The first session stops after one job (--max-jobs 1, as an
// interrupted grid would); the second trains only the other job; a third trains nothing and
// writes the same tables. Also: a bad configuration fails before any browser starts, naming the problem.
import { describe, expect, test } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '../..');

function runner(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    execFile('node', ['scripts/experiment.mjs', ...args], { cwd: root, timeout: 150_000 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
  });
}

describe('npm run experiment', () => {
  test('an interrupted grid resumes without redoing finished jobs and ends with the same tables', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'experiment-'));
    const config = join(mkdtempSync(join(tmpdir(), 'experiment-config-')), 'tiny.json');
    // two cheap jobs: head-only and BitFit, 2 steps, 16 dev examples, no test split
    writeFileSync(config, JSON.stringify({
      name: 'tiny', model: 'mini-bert', tasks: ['sentiment'], seeds: [1], dataSeed: 42, evalExamples: 16, test: false,
      train: { steps: 2, batchSize: 8, seqLen: 16 },
      runs: [{ label: 'head', method: 'headonly' }, { label: 'bitfit', method: 'bitfit' }],
    }));
    const args = ['--config', config, '--out-dir', dir];
    const first = await runner([...args, '--max-jobs', '1']);
    expect(first.code, first.out).toBe(0);
    expect(first.out).toContain('1 of 2 jobs finished (1 left');
    const state = () => readFileSync(join(dir, 'tiny.jobs.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(state().map((r) => r.run)).toEqual(['head']);
    expect(readFileSync(join(dir, 'tiny.md'), 'utf8')).toContain('jobs finished: 1 of 2 — **incomplete**');

    const second = await runner(args);
    expect(second.code, second.out).toBe(0);
    expect(second.out).toContain('2 jobs; 1 already finished');
    expect(state().map((r) => r.run)).toEqual(['head', 'bitfit']);
    const result = JSON.parse(readFileSync(join(dir, 'tiny.json'), 'utf8'));
    expect(result.jobs).toHaveLength(2);
    for (const r of result.jobs) {
      expect(r.dev.accuracy).toBeGreaterThanOrEqual(0);
      expect(r.dev.accuracy).toBeLessThanOrEqual(1);
      expect(r.msPerStep).toBeGreaterThan(0);
      expect(r.trainable).toBeGreaterThan(0);
    }
    const md = readFileSync(join(dir, 'tiny.md'), 'utf8');
    expect(md).toMatch(/\| head \| headonly \| 0\.001 \| 1 \| \d+\.\d \|/);
    expect(md).toContain('jobs finished: 2 of 2');

    const third = await runner(args);
    expect(third.code, third.out).toBe(0);
    expect(third.out).toContain('2 already finished');
    expect(third.out).not.toContain('adapter: google'); // no browser was started
    expect(state()).toHaveLength(2);
    expect(JSON.parse(readFileSync(join(dir, 'tiny.json'), 'utf8')).aggregation).toEqual(result.aggregation);
  }, 400_000); // about 40 s on an idle 2-core machine; room for a machine shared with other jobs

  test('a bad configuration stops before training with every problem named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'experiment-'));
    const config = join(dir, 'bad.json');
    writeFileSync(config, JSON.stringify({ tasks: ['imdb'], seeds: [1], runs: [{ label: 'a', method: 'prefix-tuning' }] }));
    const r = await runner(['--config', config, '--out-dir', dir]);
    expect(r.code).toBe(2);
    expect(r.out).toContain('unknown task "imdb"');
    expect(r.out).toContain('unknown method "prefix-tuning"');
  });
});
