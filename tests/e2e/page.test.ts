// The page in headless Chromium with WebGPU on SwiftShader, served by the project's own Vite
// config: it acquires an adapter in its worker, shows it, and runs the matmul self-test.
// Screenshots go to docs/screenshots (the README shows them).
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createServer, type ViteDevServer } from 'vite';
import { chromium, type Browser } from 'playwright';
import { resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { chromiumArgs, chromiumPath } from '../../scripts/chromium.mjs';

const root = resolve(__dirname, '../..');
let server: ViteDevServer;
let browser: Browser;
let base = '';

beforeAll(async () => {
  server = await createServer({
    root,
    configFile: resolve(root, 'vite.config.ts'),
    cacheDir: resolve(root, 'node_modules/.vite-e2e'),
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  await server.listen();
  const addr = server.httpServer!.address();
  if (!addr || typeof addr === 'string') throw new Error('no server address');
  base = `http://127.0.0.1:${addr.port}/`;
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
  mkdirSync(resolve(root, 'docs/screenshots'), { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
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
    await page.screenshot({ path: resolve(root, 'docs/screenshots/gpu-status.png'), fullPage: true });
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
    await page.screenshot({ path: resolve(root, 'docs/screenshots/no-webgpu.png') });
    await page.close();
  });
});
