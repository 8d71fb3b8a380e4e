// npm run bench:multitask — issue 7's numbers in headless Chromium on the playground's engine:
// multi-task AdapterDrop inference (k tasks × n dropped layers, shared vs separate) with each task's
// dev accuracy per n, and AdapterFusion against single-task adapters. Writes bench/multitask.json.
//   node scripts/bench-multitask.mjs [--quick] [--out file.json]
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';
import { chromium } from 'playwright';
import { chromiumArgs, chromiumPath } from './chromium.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const config = args.includes('--quick') ? { adapterSteps: 10, fusionSteps: 5, timedBatches: 1, devExamples: 32 } : {};
const outFile = resolve(root, option('--out') ?? 'bench/multitask.json');

const server = await createServer({
  root,
  configFile: resolve(root, 'vite.config.ts'),
  cacheDir: resolve(root, 'node_modules/.vite-bench-multitask'),
  logLevel: 'warn',
  server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  optimizeDeps: { entries: ['bench/multitask.html'] },
});
let browser;
try {
  await server.listen();
  const url = `http://127.0.0.1:${server.httpServer.address().port}/bench/multitask.html`;
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`  [page] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`  [page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => typeof window.runMultitaskBench === 'function', null, { timeout: 120_000 });
  const t0 = Date.now();
  const result = await page.evaluate((c) => window.runMultitaskBench(c), config);
  console.log(`\nadapter: ${result.adapter}  (bench took ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  console.log('multi-task inference, ms per batch: adapters of the lowest n layers dropped and those layers shared');
  console.table(result.multitask.map((r) => ({ tasks: r.tasks, n: r.n, 'shared ms': r.infer_ms, 'separate ms': r.separate_ms, 'speed-up': `${r.speedup.toFixed(2)}×` })));
  console.log('dev accuracy per task and n (robust AdapterDrop training)');
  console.table(result.accuracy);
  console.log('AdapterFusion vs the single-task adapter (dev accuracy)');
  console.table(result.fusion);
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${outFile}`);
} finally {
  await browser?.close();
  await server.close();
}
