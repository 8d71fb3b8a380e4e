// The playground in headless Chromium (WebGPU on SwiftShader), served by the project's Vite config:
// train with the default model and dataset and watch the loss fall, overlay two methods, AdaMix's
// routing counts, the AdapterDrop table, a URL round-trip, a malformed CSV that keeps the previous
// dataset, "compare methods", a lost GPU device resumed from the run's last checkpoint, and a
// finished run offered as a base model. Runs are kept tiny through the URL (batch 8, 16 tokens);
// after the first test, runs use a small imported CSV (24 dev examples) so evaluations are quick.
// Screenshots of the main views go to docs/screenshots (the README shows them).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright';
import { resolve } from 'node:path';
import { shots, startPageHost, type PageHost } from './host';

let host: PageHost;
let browser: Browser;
let base = '';
let page: Page;
const pageErrors: string[] = [];

const SMALL = 'ds=sentiment&model=default&bs=8&seq=16&lr=0.003&seed=7';

/** 240 labelled sentences (a positive or negative word among fillers): a quick dataset to import */
function smallCsv(): Buffer {
  const pos = ['good', 'great', 'wonderful', 'fine', 'lovely'], neg = ['bad', 'awful', 'dull', 'poor', 'boring'];
  const fill = ['the', 'movie', 'was', 'plot', 'and', 'actors', 'story', 'it', 'very', 'a'];
  const rows = ['text,label'];
  for (let i = 0; i < 240; i++) {
    const words = Array.from({ length: 4 + (i % 5) }, (_, k) => fill[(i * 7 + k * 3) % fill.length]);
    const label = i % 2 ? 'pos' : 'neg';
    words.splice(i % words.length, 0, (label === 'pos' ? pos : neg)[(i >> 1) % 5]);
    rows.push(`${words.join(' ')},${label}`);
  }
  return Buffer.from(rows.join('\n') + '\n');
}

async function importSmall(p: Page): Promise<void> {
  await p.getByTestId('dataset-file').setInputFiles({ name: 'small.csv', mimeType: 'text/csv', buffer: smallCsv() });
  await expect.poll(() => p.getByTestId('dataset-summary').textContent(), { timeout: 30_000 }).toMatch(/small\.csv: 192 train · 24 dev/);
}

/** the main thread's long tasks since the last reset: count, longest and the three longest */
async function longTasks(p: Page): Promise<{ count: number; longest: number; top: number[] }> {
  const all = await p.evaluate(() => (window as unknown as { __longTasks: number[] }).__longTasks.slice());
  const top = all.sort((a, b) => b - a).slice(0, 3).map(Math.round);
  return { count: all.length, longest: top[0] ?? 0, top };
}

interface RunView { label: string; state: string; losses: number[]; points: number[]; evals: number; kind: string; routing?: { passes: number; down: number[][] }; adapterDrop?: unknown[]; routeEval?: unknown; message?: string; checkpointStep?: number | null; resumedFrom?: number[] }

/** the runs as the store holds them (the dev build exposes the store as window.__playground) */
function runs(p: Page): Promise<RunView[]> {
  return p.evaluate(() => {
    const store = (window as unknown as { __playground: { getState(): { runs: Array<Record<string, any>> } } }).__playground;
    return store.getState().runs.map((r) => ({
      label: r.label, state: r.state, kind: r.config.method.kind, message: r.message, losses: r.steps.map((s: { loss: number }) => s.loss), evals: r.evals.length,
      points: r.steps.map((s: { step: number }) => s.step), routing: r.routing, adapterDrop: r.adapterDrop, routeEval: r.routeEval,
      checkpointStep: r.checkpointStep, resumedFrom: r.resumedFrom,
    }));
  });
}

async function waitRunsFinished(p: Page, count: number, timeout = 180_000): Promise<RunView[]> {
  await expect.poll(async () => {
    const rs = await runs(p);
    const failed = rs.find((r) => r.state === 'error');
    if (failed) throw new Error(`run ${failed.label} failed: ${failed.message}`);
    return rs.filter((r) => r.state === 'finished').length;
  }, { timeout, interval: 500 }).toBeGreaterThanOrEqual(count);
  return runs(p);
}

async function openReady(p: Page, search: string): Promise<void> {
  await p.goto(`${base}?${search}`);
  await p.getByTestId('dataset-summary').waitFor({ timeout: 90_000 });
  await expect.poll(() => p.getByTestId('train').isEnabled(), { timeout: 90_000 }).toBe(true);
}

beforeAll(async () => {
  host = await startPageHost();
  ({ browser, base } = host);
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  // the main thread's long tasks (> 50 ms) during everything the tests do
  await page.addInitScript(() => {
    const w = window as unknown as { __longTasks: number[] };
    w.__longTasks = [];
    new PerformanceObserver((list) => { for (const e of list.getEntries()) w.__longTasks.push(e.duration); }).observe({ type: 'longtask', buffered: true });
  });
});

afterAll(async () => {
  await host?.close();
});

describe('the playground page', () => {
  test('trains the default model on the default dataset: the loss chart gains points and the loss falls', async () => {
    await openReady(page, `${SMALL}&method=headonly&steps=16&eval=8`);
    await page.evaluate(() => { (window as unknown as { __longTasks: number[] }).__longTasks.length = 0; });
    await page.getByTestId('train').click();
    await expect.poll(async () => Number(await page.getByTestId('loss-chart').getAttribute('data-points')), { timeout: 120_000 }).toBeGreaterThan(0);
    const [run] = await waitRunsFinished(page, 1);
    expect(run.losses.length).toBe(16);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(run.losses.slice(0, 4)), last = mean(run.losses.slice(-4));
    expect(last, `mean loss of the last 4 steps ${last} vs the first 4 ${first}`).toBeLessThan(first);
    expect(run.evals).toBeGreaterThanOrEqual(2);
    const lt = await longTasks(page);
    console.log(`main-thread long tasks while training 16 steps: ${lt.count}, longest ${lt.longest} ms (top ${lt.top.join(', ')} ms)`);
    expect(lt.longest).toBeLessThan(1000);
    // a finished head-only run keeps its weights: it is offered as a base model
    await expect.poll(() => page.getByTestId('saved-model-select').locator('option').count(), { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
    expect(await page.getByTestId('saved-model-select').locator('option').allTextContents()).toContainEqual(expect.stringMatching(/Head only.*Review sentiment/));
  });

  test('a second method is overlaid on the same axes, one style per run', async () => {
    await page.getByTestId('method-select').selectOption('lora');
    await page.getByTestId('train').click();
    const rs = await waitRunsFinished(page, 2);
    expect(rs.map((r) => r.kind)).toEqual(['headonly', 'lora']);
    expect(await page.getByTestId('run-legend').locator('li').count()).toBe(2);
    // raw + smoothed line per run in the loss chart
    expect(await page.getByTestId('loss-chart').locator('.recharts-line').count()).toBe(4);
    expect(await page.getByTestId('runs-table').locator('tbody tr').count()).toBe(2);
  });

  test('AdaMix shows per-layer expert counts and merged vs sampled-route accuracy', async () => {
    await importSmall(page);
    await page.getByTestId('method-select').selectOption('adamix');
    await page.getByTestId('train').click();
    const rs = await waitRunsFinished(page, 3);
    const adamix = rs[2];
    expect(adamix.kind).toBe('adamix');
    expect(adamix.routing!.passes).toBeGreaterThan(0);
    // two routed passes per step (consistency), one expert per layer each
    for (const row of adamix.routing!.down) expect(row.reduce((a, b) => a + b, 0)).toBe(adamix.routing!.passes);
    await page.getByTestId('adamix-counts').waitFor();
    await page.getByTestId('adamix-eval').click();
    await page.getByTestId('adamix-route-eval').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('adamix-route-eval').textContent()).toMatch(/Merged .* \d+\.\d %/);
    await page.getByTestId('adamix-panel').scrollIntoViewIfNeeded();
    await page.mouse.move(0, 0); // no chart tooltip in the screenshot
    await page.getByTestId('adamix-panel').screenshot({ path: resolve(shots, 'adamix-routing.png') });
  });

  test('the AdapterDrop panel fills with accuracy and time per batch for n = 0…L', async () => {
    await page.getByTestId('adapterdrop-measure').click();
    await page.getByTestId('adapterdrop-table').waitFor({ timeout: 220_000 }); // L+2 dev passes: slow on a loaded SwiftShader machine
    const layers = await page.evaluate(() => (window as unknown as { __playground: { getState(): { model: { config: { numLayers: number } } } } }).__playground.getState().model.config.numLayers);
    expect(await page.getByTestId('adapterdrop-table').locator('tbody tr').count()).toBe(layers + 1);
    // training speed-up: timed steps of throwaway copies with n = 0…L−1 dropped
    await page.getByTestId('adapterdrop-train-measure').click();
    await page.getByTestId('adapterdrop-train-table').waitFor({ timeout: 220_000 });
    const rows = await page.getByTestId('adapterdrop-train-table').locator('tbody tr').allTextContents();
    console.log(`AdapterDrop training ms/step by n: ${rows.join(' | ')}`);
    expect(rows.length).toBe(layers);
    expect(rows[0]).toMatch(/^0[\d.]+1\.00×$/);
    await page.getByTestId('adapterdrop-panel').scrollIntoViewIfNeeded();
    await page.getByTestId('adapterdrop-panel').screenshot({ path: resolve(shots, 'adapterdrop.png') });
  }, 300_000);

  test('a malformed CSV shows a line-numbered error and keeps the previous dataset', async () => {
    const before = await page.getByTestId('dataset-summary').textContent();
    await page.getByTestId('dataset-file').setInputFiles({ name: 'broken.csv', mimeType: 'text/csv', buffer: Buffer.from('text,label\ngood movie,pos\n"unterminated quote,neg\n') });
    await page.getByTestId('dataset-error').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('dataset-error').textContent()).toMatch(/broken\.csv.*line \d+/);
    expect(await page.getByTestId('dataset-summary').textContent()).toBe(before);
    // the kept dataset still trains: Step starts a new run (the AdaMix one finished) with one point
    const pointsBefore = (await runs(page)).reduce((a, r) => a + r.losses.length, 0);
    await page.getByTestId('step').click();
    await expect.poll(async () => (await runs(page)).reduce((a, r) => a + r.losses.length, 0), { timeout: 120_000 }).toBe(pointsBefore + 1);
  });

  test('the URL holds the whole configuration: a link reproduces the setup', async () => {
    // a page of its own, so the test does not depend on the state the others leave behind
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await openReady(page, SMALL);
    await page.getByTestId('method-select').selectOption('houlsby');
    await page.locator('#hp-bottleneck').fill('8');
    await page.locator('#hp-bottleneck').press('Enter');
    await page.getByTestId('cfg-seed').fill('123');
    await page.getByTestId('cfg-seed').press('Enter');
    // the URL is rewritten when the store commits the change: wait for it rather than race it
    await expect.poll(() => page.url(), { timeout: 10_000 }).toMatch(/seed=123/);
    const url = page.url();
    expect(url).toMatch(/method=houlsby/);
    expect(url).toMatch(/bottleneck=8/);
    expect(url).toMatch(/seed=123/);
    const other = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await openReady(other, url.split('?')[1]);
    expect(await other.getByTestId('method-select').inputValue()).toBe('houlsby');
    expect(await other.locator('#hp-bottleneck').inputValue()).toBe('8');
    expect(await other.getByTestId('cfg-seed').inputValue()).toBe('123');
    expect(await other.getByTestId('cfg-batchSize').inputValue()).toBe('8');
    expect(await other.getByTestId('cfg-seqLen').inputValue()).toBe('16');
    expect(other.url()).toBe(url);
    await other.close();
    await page.close();
  });

  test('a lost GPU device: the page says so, and Resume continues the run from its last checkpoint', async () => {
    const p = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    p.on('pageerror', (e) => pageErrors.push(e.message));
    await openReady(p, `${SMALL}&method=lora&steps=14&eval=0`);
    await importSmall(p);
    // checkpoints every 4 steps instead of 50, so a short run has some
    await p.evaluate(() => (window as unknown as { __playground: { setState(s: object): void } }).__playground.setState({ checkpointEvery: 4 }));
    await p.getByTestId('train').click();
    await expect.poll(async () => {
      const run = (await runs(p)).at(-1)!;
      return (run.checkpointStep ?? 0) >= 4 && run.losses.length >= 6 && run.state === 'training';
    }, { timeout: 120_000, interval: 200 }).toBe(true);
    await p.evaluate(() => (window as unknown as { __playgroundDev: { simulateDeviceLoss(): Promise<void> } }).__playgroundDev.simulateDeviceLoss());
    await p.getByTestId('device-lost').waitFor({ timeout: 30_000 });
    const lostAt = (await runs(p)).at(-1)!;
    const from = lostAt.checkpointStep!;
    expect(await p.getByTestId('resume').textContent()).toBe(`Resume ${lostAt.label} from step ${from}`);
    await p.getByTestId('resume').click();
    const [run] = (await waitRunsFinished(p, 1)).filter((r) => r.label === lostAt.label);
    expect(run.resumedFrom).toEqual([from]);
    // one curve without gaps or repeats: the steps after the checkpoint were trained again
    expect(run.points).toEqual(Array.from({ length: 14 }, (_, i) => i + 1));
    await p.close();
  });

  test('"compare methods" queues six methods on the same data, model and seed', async () => {
    const p = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    p.on('pageerror', (e) => pageErrors.push(e.message));
    // a fresh IndexedDB would be nicer, but saved runs only come back unticked: count by kind
    await openReady(p, `${SMALL}&method=lora&steps=4&eval=0`);
    await importSmall(p);
    const before = (await runs(p)).length;
    await p.getByTestId('compare').click();
    const rs = await waitRunsFinished(p, 6, 400_000);
    expect(rs.slice(before).map((r) => r.kind)).toEqual(['full', 'headonly', 'houlsby', 'pfeiffer', 'lora', 'adamix']);
    await p.screenshot({ path: resolve(shots, 'comparison-quick.png') });
    await p.setViewportSize({ width: 420, height: 900 });
    await p.screenshot({ path: resolve(shots, 'narrow.png') });
    await p.close();
    expect(pageErrors).toEqual([]);
  }, 420_000); // six short runs, each with its final dev evaluation, on software WebGPU
});
