// The page in headless Chromium with WebGPU on SwiftShader, served by the project's own Vite
// config: it acquires an adapter in its worker, shows it, and runs the matmul self-test.
// Screenshots go to docs/screenshots (the README shows them).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Browser } from 'playwright';
import { resolve } from 'node:path';
import { shots, startPageHost, type PageHost } from './host';

let host: PageHost;
let browser: Browser;
let base = '';

beforeAll(async () => {
  host = await startPageHost();
  ({ browser, base } = host);
});

afterAll(async () => {
  await host?.close();
});

describe('the page', () => {
  test('shows the WebGPU adapter from its worker and a passing matmul self-test', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base);
    await page.getByTestId('gpu-status').waitFor({ timeout: 60_000 });
    await expect.poll(() => page.getByTestId('selftest').textContent(), { timeout: 90_000, interval: 500 }).toMatch(/passed|FAILED|failed/);
    expect(await page.getByTestId('selftest').textContent()).toMatch(/✓ passed/);
    expect(await page.getByTestId('adapter-name').textContent()).toMatch(/swiftshader|\w+/);
    await page.screenshot({ path: resolve(shots, 'gpu-status.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  test('without WebGPU it explains what is missing instead of a blank page', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // the worker is where the engine runs: hide navigator.gpu from it (and from the page)
    await page.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    });
    await page.route('**/src/train/worker.ts*', async (route) => {
      const resp = await route.fetch();
      const body = await resp.text();
      await route.fulfill({ response: resp, body: `Object.defineProperty(WorkerNavigator.prototype, 'gpu', { get: () => undefined, configurable: true });\n${body}` });
    });
    await page.goto(base);
    const alert = page.getByTestId('webgpu-missing');
    await alert.waitFor({ timeout: 60_000 });
    expect(await alert.textContent()).toMatch(/navigator\.gpu is missing/);
    expect(await alert.textContent()).toMatch(/enable-unsafe-webgpu/);
    await page.screenshot({ path: resolve(shots, 'no-webgpu.png') });
    await page.close();
  });
});
