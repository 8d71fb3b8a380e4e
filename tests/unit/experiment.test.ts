// The experiment runner's pure logic (src/train/experiment.ts): configuration checks with clear
// messages, the page's exported run as a one-job grid, job keys, resuming an interrupted grid from
// its state file without redoing finished jobs, and the mean ± std aggregation in markdown and JSON.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  aggregate, expandJobs, ExperimentConfigError, meanStd, parseExperiment, progressLine, readState, renderMarkdown, runGrid, stateLine,
  type Experiment, type Job, type JobResult,
} from '../../src/train/experiment';
import { DEFAULT_CONFIG } from '../../src/ui/config';

const ctx = { tasks: ['sentiment', 'topic', 'spam'], models: ['mini-bert'], layers: { 'mini-bert': 4, default: 4 } };

function grid(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'tiny',
    model: 'mini-bert',
    tasks: ['sentiment'],
    seeds: [1, 2, 3],
    train: { steps: 5 },
    runs: [
      { label: 'lora', method: { kind: 'lora', r: 4 } },
      { label: 'adamix', method: 'adamix', eval: [{ label: 'merged', merged: true }, { label: 'ens', ensemble: 3 }] },
    ],
    ...over,
  };
}

function problemsOf(raw: unknown): string[] {
  try {
    parseExperiment(raw, ctx);
  } catch (e) {
    expect(e).toBeInstanceOf(ExperimentConfigError);
    return (e as ExperimentConfigError).problems;
  }
  throw new Error('the configuration was accepted');
}

/** A job's result as the page would return it, with a dev accuracy the test chooses. */
function fakeResult(job: Job, devAccuracy: number): JobResult {
  return {
    key: job.key, hash: job.hash, run: job.spec.run, task: job.spec.task, seed: job.spec.seed, method: job.spec.method.kind, steps: job.spec.train.totalSteps,
    trainable: 1000, total: 100_000, trainablePct: 1, msPerStep: 100 + job.spec.seed, wallS: 10, finalLoss: 0.5,
    dev: { accuracy: devAccuracy, macroF1: devAccuracy - 0.01, loss: 0.5 }, test: { accuracy: devAccuracy - 0.02, macroF1: 0.5, loss: 0.6 },
    variants: job.spec.eval.map((v) => ({ label: v.label, accuracy: devAccuracy + (v.ensemble ? -0.05 : 0), macroF1: 0.5 })),
    curve: [],
  };
}

describe('experiment configuration', () => {
  it('fills method fields and training settings from the defaults and keeps the given ones', () => {
    const exp = parseExperiment(grid(), ctx);
    expect(exp.runs[0].method).toEqual({ kind: 'lora', r: 4, alpha: 16, targets: ['query', 'value'] });
    expect(exp.runs[1].method.kind).toBe('adamix');
    expect(exp.runs[0].train.steps).toBe(5);
    expect(exp.runs[0].train.batchSize).toBe(16);
    expect(exp.test).toBe(true);
  });

  it('names every problem at once: unknown method, task, field, bad values', () => {
    const problems = problemsOf(
      grid({
        tasks: ['sentiment', 'imdb'],
        seeds: [1, 1],
        colour: 'red',
        train: { steps: 0, lr: 'fast' },
        runs: [
          { label: 'x', method: { kind: 'prefix' } },
          { label: 'y', method: { kind: 'lora', rank: 8 } },
          { label: 'y', method: 'houlsby', eval: [{ label: 'm', merged: true }] },
          { label: 'z', method: 'full', adapterDrop: { mode: 'specialized', n: 4 } },
        ],
      }),
    );
    const text = problems.join('\n');
    expect(text).toContain('unknown task "imdb"');
    expect(text).toContain('a seed appears twice');
    expect(text).toContain('unknown field "colour"');
    expect(text).toContain('train.steps');
    expect(text).toContain('train.lr');
    expect(text).toContain('unknown method "prefix"');
    expect(text).toContain('lora has no field "rank"');
    expect(text).toContain('"y" appears twice');
    expect(text).toContain('need an AdaMix method');
    expect(text).toContain('runs[3].adapterDrop.n: a whole number in 0…3');
    expect(problems.length).toBeGreaterThanOrEqual(10);
  });

  it('refuses a model that is not on disk and evaluations that mix kinds', () => {
    expect(problemsOf(grid({ model: 'bert-base-uncased' })).join('\n')).toContain('not a model under public/models');
    const p = problemsOf(grid({ runs: [{ label: 'a', method: 'adamix', eval: [{ label: 'e', merged: true, ensemble: 2 }] }] }));
    expect(p.join('\n')).toContain('exactly one of merged, route, ensemble, droppedLayers');
  });

  it("reads the page's exported configuration as a one-job grid with the page's training settings", () => {
    const page = { ...DEFAULT_CONFIG, dataset: 'topic', seed: 7, steps: 12, method: { kind: 'pfeiffer', reductionFactor: 8 } };
    const exp = parseExperiment(JSON.parse(JSON.stringify(page)), ctx, 'from-page');
    expect(exp.source).toBe('page');
    expect(exp.name).toBe('from-page');
    expect(exp.tasks).toEqual(['topic']);
    expect(exp.seeds).toEqual([7]);
    expect(exp.dataSeed).toBeUndefined(); // the page splits with the run's seed
    const [job] = expandJobs(exp, 'digest');
    expect(job.spec.dataSeed).toBe(7);
    expect(job.spec.train).toMatchObject({ lr: page.lr, totalSteps: 12, batchSize: page.batchSize, seqLen: page.seqLen, seed: 7 });
    expect(job.spec.method).toEqual({ kind: 'pfeiffer', reductionFactor: 8 });
    expect(problemsOf({ ...page, dataset: 'file:mine.csv' }).join('\n')).toContain('imported from a file');
  });

  it('accepts the shipped configurations', () => {
    for (const name of ['methods', 'adamix-ablation', 'adapterdrop']) {
      const raw = JSON.parse(readFileSync(new URL(`../../experiments/${name}.json`, import.meta.url), 'utf8'));
      const exp = parseExperiment(raw, ctx, name);
      expect(exp.name).toBe(name);
      expect(expandJobs(exp, 'd').length).toBe(exp.runs.length * exp.tasks.length * exp.seeds.length);
    }
  });
});

describe('job keys', () => {
  it('are stable under key order and change with any setting or the base weights', () => {
    const a = expandJobs(parseExperiment(grid(), ctx), 'w1');
    const reordered = grid();
    reordered.runs = [{ method: { r: 4, kind: 'lora' }, label: 'lora' }, (grid().runs as unknown[])[1]];
    expect(expandJobs(parseExperiment(reordered, ctx), 'w1').map((j) => j.key)).toEqual(a.map((j) => j.key));
    const b = expandJobs(parseExperiment(grid({ train: { steps: 6 } }), ctx), 'w1');
    const c = expandJobs(parseExperiment(grid(), ctx), 'w2');
    for (let i = 0; i < a.length; i++) {
      expect(b[i].key).not.toBe(a[i].key);
      expect(c[i].key).not.toBe(a[i].key);
    }
    expect(new Set(a.map((j) => j.key)).size).toBe(a.length);
  });

  it('come seed-major, so an interrupted grid has every run before any run has two seeds', () => {
    const jobs = expandJobs(parseExperiment(grid(), ctx), 'w');
    expect(jobs.map((j) => `${j.spec.run}/${j.spec.seed}`)).toEqual(['lora/1', 'adamix/1', 'lora/2', 'adamix/2', 'lora/3', 'adamix/3']);
  });
});

describe('resuming an interrupted grid', () => {
  const accuracy = (j: Job) => 0.6 + 0.1 * j.spec.seed + (j.spec.run === 'adamix' ? 0.05 : 0);

  /** The driver's loop with an in-memory state file; `failAfter` interrupts it like a killed process. */
  async function session(jobs: Job[], state: { text: string }, failAfter = Infinity): Promise<string[]> {
    const { done } = readState(state.text, jobs);
    const ran: string[] = [];
    await runGrid(
      jobs,
      done,
      async (job) => {
        if (ran.length >= failAfter) throw new Error('killed');
        ran.push(job.key);
        return fakeResult(job, accuracy(job));
      },
      (r) => {
        state.text += stateLine(r);
      },
    ).catch((e: Error) => {
      if (e.message !== 'killed') throw e;
    });
    return ran;
  }

  it('skips the finished jobs, runs only the rest, and aggregates as an uninterrupted grid does', async () => {
    const exp = parseExperiment(grid(), ctx);
    const jobs = expandJobs(exp, 'w');
    const interrupted = { text: '' };
    const first = await session(jobs, interrupted, 2);
    expect(first).toEqual(jobs.slice(0, 2).map((j) => j.key));
    // the process died while appending the third line: a torn line must not count as finished
    interrupted.text += stateLine(fakeResult(jobs[2], 0.9)).slice(0, 40);
    const { done: afterCrash, notes } = readState(interrupted.text, jobs);
    expect(afterCrash.size).toBe(2);
    expect(notes.join('\n')).toContain('not complete JSON');
    interrupted.text = interrupted.text.slice(0, interrupted.text.lastIndexOf('\n') + 1) + '\n';
    const second = await session(jobs, interrupted);
    expect(second).toEqual(jobs.slice(2).map((j) => j.key));
    const third = await session(jobs, interrupted);
    expect(third).toEqual([]);

    const straight = { text: '' };
    await session(jobs, straight);
    const aggOf = (text: string) => aggregate(exp, jobs, readState(text, jobs).done);
    expect(aggOf(interrupted.text)).toEqual(aggOf(straight.text));
    expect(aggOf(interrupted.text).finished).toBe(jobs.length);
  });

  it('reruns only the runs whose settings changed', async () => {
    const state = { text: '' };
    await session(expandJobs(parseExperiment(grid(), ctx), 'w'), state);
    const edited = grid();
    (edited.runs as { method: unknown }[])[0].method = { kind: 'lora', r: 8 };
    const jobs = expandJobs(parseExperiment(edited, ctx), 'w');
    const { notes } = readState(state.text, jobs);
    expect(notes.join('\n')).toContain('3 finished job(s) in the state file belong to another configuration');
    const ran = await session(jobs, state);
    expect(ran).toEqual(jobs.filter((j) => j.spec.run === 'lora').map((j) => j.key));
  });
});

describe('aggregation', () => {
  it('computes the mean and the sample standard deviation', () => {
    expect(meanStd([0.7, 0.8, 0.9])).toEqual({ mean: expect.closeTo(0.8, 12), std: expect.closeTo(0.1, 12), n: 3 });
    expect(meanStd([0.5])).toEqual({ mean: 0.5, std: 0, n: 1 });
    expect(meanStd([]).n).toBe(0);
  });

  it('writes a table per task with mean ± std over seeds and the variants as their own table', async () => {
    const exp: Experiment = parseExperiment(grid({ tasks: ['sentiment', 'topic'] }), ctx);
    const jobs = expandJobs(exp, 'w');
    const done = new Map<string, JobResult>();
    // topic gets only the first seed of lora: partial grids render what is there and say so
    for (const j of jobs) if (j.spec.task === 'sentiment' || (j.spec.run === 'lora' && j.spec.seed === 1)) done.set(j.key, fakeResult(j, 0.6 + 0.1 * j.spec.seed));
    const agg = aggregate(exp, jobs, done);
    const sentiment = agg.tasks[0].runs;
    expect(sentiment.map((r) => r.run)).toEqual(['lora', 'adamix']);
    expect(sentiment[0].dev.mean).toBeCloseTo(0.8, 12);
    expect(sentiment[0].dev.std).toBeCloseTo(0.1, 12);
    expect(sentiment[1].variants.ens.mean).toBeCloseTo(0.75, 12);
    expect(agg.tasks[1].runs).toHaveLength(1);
    expect(agg.finished).toBe(7);
    const md = renderMarkdown(exp, agg, { adapter: 'test adapter', model: 'mini-bert', date: '2026-01-01', command: 'npm run experiment' });
    expect(md).toContain('| lora | lora | 0.001 | 3 | 80.0 ± 10.0 | 79.0 ± 10.0 | 78.0 ± 10.0 |');
    expect(md).toContain('| run | merged | ens |');
    expect(md).toContain('| adamix | 80.0 ± 10.0 | 75.0 ± 10.0 |');
    expect(md).toContain('| lora | lora | 0.001 | 1 | 70.0 |');
    expect(md).toContain('jobs finished: 7 of 12 — **incomplete**');
    expect(md).toContain('5 steps, batch 16, seq 32, lr 0.001');
    const override = parseExperiment(grid({ runs: [{ label: 'full', method: 'full', train: { lr: 1e-4 } }, { label: 'lora', method: 'lora' }] }), ctx);
    expect(renderMarkdown(override, aggregate(override, [], new Map()), { adapter: 'a', model: 'm', date: 'd', command: 'c' })).toContain('lr 0.001, weight decay 0.01, warm-up 6 %, grad clip 1, AdamW; runs that override a setting: full');
  });

  it('keeps a diverged seed out of the means and says so', () => {
    const exp = parseExperiment(grid(), ctx);
    const jobs = expandJobs(exp, 'w');
    const done = new Map<string, JobResult>();
    for (const j of jobs) {
      const r = fakeResult(j, 0.6 + 0.1 * j.spec.seed);
      if (j.spec.run === 'lora' && j.spec.seed === 3) r.error = 'the loss became NaN at step 7';
      done.set(j.key, r);
    }
    const lora = aggregate(exp, jobs, done).tasks[0].runs[0];
    expect(lora.seeds).toEqual([1, 2]);
    expect(lora.diverged).toEqual([3]);
    expect(lora.dev.mean).toBeCloseTo(0.75, 12);
    const md = renderMarkdown(exp, aggregate(exp, jobs, done), { adapter: 'a', model: 'm', date: 'd', command: 'c' });
    expect(md).toContain('| lora | lora | 0.001 | 2 (+1 diverged) | 75.0 ± 7.1 |');
  });

  it('draws the progress bar with an ETA from this session’s jobs', () => {
    expect(progressLine(6, 24, 120, 3, 'x', 8)).toBe('[##......] 6/24 jobs · 2 min · ETA 12 min · x');
    expect(progressLine(24, 24, 30, 24, '', 8)).toBe('[########] 24/24 jobs · 30 s · ETA done');
  });
});
