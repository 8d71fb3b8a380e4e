// npm run screenshot:comparison — the README's hero image: the playground (Vite dev server, headless
// Chromium, WebGPU — SwiftShader on a machine without a GPU) trains "compare methods" (full FT,
// head-only, Houlsby, Pfeiffer, LoRA, AdaMix) on the built-in sentiment task with the shipped
// mini-BERT, long enough for the curves to separate, then saves docs/screenshots/comparison.png.
// The e2e tests take the other screenshots with tiny runs; this one is worth the minutes.
//   node scripts/screenshot-comparison.mjs [--steps 60] [--eval 20] [--lr 0.005] [--out file.png]
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';
import { chromium } from 'playwright';
import { chromiumArgs, chromiumPath } from './chromium.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const steps = Number(option('--steps', '60'));
const evalEvery = Number(option('--eval', '20'));
const lr = Number(option('--lr', '0.005'));
const out = resolve(root, option('--out', 'docs/screenshots/comparison.png'));

const server = await createServer({
  root,
  configFile: resolve(root, 'vite.config.ts'),
  cacheDir: resolve(root, 'node_modules/.vite-screenshot'),
  logLevel: 'warn',
  server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
});
let browser;
try {
  await server.listen();
  const base = `http://127.0.0.1:${server.httpServer.address().port}/`;
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
  // a fresh profile: no saved runs from earlier sessions in the picture
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${base}?ds=sentiment&model=default&method=lora&bs=16&seq=32&lr=${lr}&steps=${steps}&eval=${evalEvery}&seed=1`);
  await page.getByTestId('dataset-summary').waitFor({ timeout: 120_000 });
  await page.waitForFunction(() => !document.querySelector('[data-testid="train"]')?.hasAttribute('disabled'), null, { timeout: 120_000 });
  await page.getByTestId('compare').click();
  const t0 = Date.now();
  let last = '';
  for (;;) {
    const state = await page.evaluate(() => {
      const s = window.__playground.getState();
      return s.runs.map((r) => ({ label: r.label, state: r.state, step: r.steps.at(-1)?.step ?? 0, acc: r.evals.at(-1)?.accuracy, message: r.message }));
    });
    const failed = state.find((r) => r.state === 'error');
    if (failed) throw new Error(`run ${failed.label} failed: ${failed.message}`);
    const line = state.map((r) => `${r.label} ${r.step}/${steps}${r.acc !== undefined ? ` (${(100 * r.acc).toFixed(1)} %)` : ''}`).join(' · ');
    if (line !== last) {
      process.stdout.write(`\r[${((Date.now() - t0) / 1000).toFixed(0)} s] ${line}`.slice(0, 240).padEnd(240));
      last = line;
    }
    if (state.filter((r) => r.state === 'finished').length >= 6) break;
    await new Promise((r) => setTimeout(r, 2000));
  }
  await page.waitForTimeout(1500); // the last chart redraw
  await page.screenshot({ path: out });
  console.log(`\nwrote ${out} after ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
} finally {
  await browser?.close();
  await server.close();
}
