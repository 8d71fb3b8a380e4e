// The Compose panel in headless Chromium (WebGPU on SwiftShader), served by the project's Vite
// config (the set-up is playground.test.ts's): a Pfeiffer run saved as a task adapter, the queue
// that trains one per built-in task, AdapterFusion over two of them as a normal run, its attention
// per layer, the multi-task AdapterDrop table, and the adapters still there after a reload.
// Runs are tiny (batch 8, 16 tokens, a few steps). Writes docs/screenshots/fusion.png.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Browser, Page } from 'playwright';
import { resolve } from 'node:path';
import { shots, startPageHost, type PageHost } from './host';

let host: PageHost;
let browser: Browser;
let base = '';
let page: Page;
const pageErrors: string[] = [];

const SMALL = 'ds=sentiment&model=default&bs=8&seq=16&lr=0.003&seed=7&eval=0';

interface RunView { label: string; state: string; kind: string; tasks?: string[]; evals: number; message?: string }

function runs(p: Page): Promise<RunView[]> {
  return p.evaluate(() => {
    const store = (window as unknown as { __playground: { getState(): { runs: Array<Record<string, any>> } } }).__playground;
    return store.getState().runs.map((r) => ({ label: r.label, state: r.state, kind: r.config.method.kind, tasks: r.config.method.tasks, evals: r.evals.length, message: r.message }));
  });
}

async function openReady(p: Page, search: string): Promise<void> {
  await p.goto(`${base}?${search}`);
  await p.getByTestId('dataset-summary').waitFor({ timeout: 90_000 });
  await expect.poll(() => p.getByTestId('train').isEnabled(), { timeout: 90_000 }).toBe(true);
}

/** the numbers of a table's body, row by row */
async function cells(p: Page, testId: string): Promise<number[][]> {
  return p.getByTestId(testId).locator('tbody tr').evaluateAll((rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => Number.parseFloat(td.textContent ?? ''))));
}

async function composeError(p: Page): Promise<string | null> {
  const e = p.getByTestId('compose-error');
  return (await e.count()) ? e.textContent() : null;
}

beforeAll(async () => {
  host = await startPageHost();
  ({ browser, base } = host);
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => pageErrors.push(e.message));
});

afterAll(async () => {
  await host?.close();
});

describe('composing tasks on the page', () => {
  test('a Pfeiffer run is saved as a task adapter, and the queue trains one per built-in task', async () => {
    await openReady(page, `${SMALL}&method=pfeiffer&steps=4`);
    await page.getByTestId('train').click();
    await expect.poll(async () => (await runs(page)).filter((r) => r.state === 'finished').length, { timeout: 120_000 }).toBe(1);
    await page.getByTestId('task-name').fill('mine');
    await page.getByTestId('save-task-adapter').click();
    await page.getByTestId('task-adapter-mine').waitFor({ timeout: 60_000 });

    await page.getByTestId('all-tasks-steps').fill('3');
    await page.getByTestId('train-all-tasks').click();
    await page.getByTestId('task-queue').waitFor({ timeout: 30_000 });
    await expect.poll(async () => {
      const err = await composeError(page);
      if (err) throw new Error(err);
      return page.getByTestId('task-adapters').locator('tbody tr').count();
    }, { timeout: 400_000, interval: 1000 }).toBe(4);
    await page.getByTestId('task-queue').waitFor({ state: 'detached', timeout: 60_000 });
    const names = await page.getByTestId('task-adapters').locator('tbody th').allTextContents();
    expect(names).toEqual(['mine', 'sentiment', 'topic', 'spam']);
    const rs = await runs(page);
    expect(rs.map((r) => r.kind)).toEqual(['pfeiffer', 'pfeiffer', 'pfeiffer', 'pfeiffer']);
    expect(rs.every((r) => r.state === 'finished')).toBe(true);
    // the page's setup is put back: the sentiment dataset, Pfeiffer with its 4 steps
    expect(await page.getByTestId('dataset-summary').textContent()).toMatch(/Review sentiment/);
    expect(await page.getByTestId('cfg-steps').inputValue()).toBe('4');
  }, 480_000);

  test('AdapterFusion over two saved adapters is a normal run, and its attention fills per layer', async () => {
    await page.getByTestId('fuse-sentiment').check();
    await page.getByTestId('fuse-topic').check();
    await page.getByTestId('fusion-train').click();
    await expect.poll(async () => {
      const rs = await runs(page);
      const f = rs.find((r) => r.kind === 'fusion');
      if (f?.state === 'error') throw new Error(`fusion run failed: ${f.message}`);
      if (!f && (await page.getByTestId('page-error').count())) throw new Error(String(await page.getByTestId('page-error').textContent()));
      return f?.state;
    }, { timeout: 180_000, interval: 500 }).toBe('finished');
    const fusion = (await runs(page)).find((r) => r.kind === 'fusion')!;
    expect(fusion.tasks).toEqual(['sentiment', 'topic']);
    expect(fusion.label).toMatch(/AdapterFusion/);
    expect(await page.getByTestId('runs-table').textContent()).toMatch(/AdapterFusion/);
    await page.getByTestId('fusion-compare').waitFor();
    expect(await page.getByTestId('fusion-compare').textContent()).toMatch(/\d+\.\d %.*single adapter "sentiment"/);

    const layers = await page.evaluate(() => (window as unknown as { __playground: { getState(): { model: { config: { numLayers: number } } } } }).__playground.getState().model.config.numLayers);
    await page.getByTestId('fusion-attention-dev').click();
    await page.getByTestId('fusion-attention-table').waitFor({ timeout: 120_000 });
    const dev = await cells(page, 'fusion-attention-table');
    expect(dev.length).toBe(layers);
    for (const row of dev) {
      expect(row.length).toBe(2);
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
    }
    await page.getByTestId('fusion-sentence').fill('a wonderful film with great actors');
    await page.getByTestId('fusion-sentence-go').click();
    await page.getByTestId('fusion-sentence-table').waitFor({ timeout: 60_000 });
    for (const row of await cells(page, 'fusion-sentence-table')) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
  }, 300_000);

  test('multi-task AdapterDrop: ms per batch for k = 1…4 tasks and n = 0…L, and each task\'s accuracy per n', async () => {
    await page.getByTestId('multitask-measure').click();
    await page.getByTestId('multitask-table').waitFor({ timeout: 400_000 });
    const layers = await page.evaluate(() => (window as unknown as { __playground: { getState(): { model: { config: { numLayers: number } } } } }).__playground.getState().model.config.numLayers);
    const timing = await cells(page, 'multitask-table');
    expect(timing.length).toBe(layers + 1);
    for (const row of timing) {
      expect(row.length).toBe(4);
      for (const ms of row) expect(ms).toBeGreaterThan(0);
    }
    const acc = await cells(page, 'multitask-accuracy');
    expect(acc.length).toBe(4);
    for (const row of acc) {
      expect(row.length).toBe(layers + 1);
      for (const a of row) expect(a).toBeGreaterThanOrEqual(0);
    }
    const text = await page.getByTestId('multitask-table').textContent();
    console.log(`multi-task table: ${text}`);
    expect(await page.getByTestId('multitask-explain').textContent()).toMatch(/21–42 %/);
    await page.getByTestId('compose-panel').scrollIntoViewIfNeeded();
    await page.mouse.move(0, 0);
    await page.getByTestId('compose-panel').screenshot({ path: resolve(shots, 'fusion.png') });
  }, 480_000);

  test('saved task adapters come back after a reload, and one can be deleted', async () => {
    await openReady(page, SMALL);
    await expect.poll(() => page.getByTestId('task-adapters').locator('tbody tr').count(), { timeout: 60_000 }).toBe(4);
    await page.getByRole('button', { name: 'delete task adapter mine' }).click();
    await expect.poll(() => page.getByTestId('task-adapters').locator('tbody tr').count(), { timeout: 30_000 }).toBe(3);
    await openReady(page, SMALL);
    await expect.poll(() => page.getByTestId('task-adapters').locator('tbody tr').count(), { timeout: 60_000 }).toBe(3);
    expect(pageErrors).toEqual([]);
  }, 240_000);
});
