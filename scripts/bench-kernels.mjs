// npm run bench:kernels — our WGSL kernels against tfjs-backend-webgpu in headless Chromium.
// Starts a Vite dev server on a free port, opens bench/kernels.html in Chromium with WebGPU
// (SwiftShader here, the real GPU elsewhere), runs the benchmark in the page, prints a table and
// writes bench/kernels.json.
//
//   node scripts/bench-kernels.mjs [--quick] [--shapes 128x128x128,2048x512x128] [--out file.json]
//   --no-peer: only time our matmul variants against each other (kernel development)
import { writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'vite';
import { chromium } from 'playwright';
import { chromiumArgs, chromiumPath } from './chromium.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};

const config = {};
if (flag('--quick')) {
  Object.assign(config, {
    matmulShapes: [[128, 128, 128], [512, 512, 512], [2048, 512, 128]],
    minMs: 200,
    rounds: 1,
    elementwise: { layernorm: [[2048, 128]], gelu: [2048 * 512] },
  });
}
if (flag('--no-peer')) Object.assign(config, { peer: false, elementwise: { layernorm: [], gelu: [] } });
if (option('--shapes')) {
  config.matmulShapes = option('--shapes').split(',').map((s) => s.split('x').map(Number));
}
const outFile = resolve(root, option('--out') ?? 'bench/kernels.json');

const server = await createServer({
  root,
  configFile: resolve(root, 'vite.config.ts'),
  // a cache of its own: test runs that share the tree use node_modules/.vite
  cacheDir: resolve(root, 'node_modules/.vite-bench'),
  logLevel: 'warn',
  server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  // pre-bundle tfjs before the page loads, so dependency discovery cannot reload it mid-run
  optimizeDeps: {
    entries: ['bench/kernels.html'],
    include: ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-webgpu'],
  },
});
let browser;
try {
  await server.listen();
  const address = server.httpServer.address();
  const url = `http://127.0.0.1:${address.port}/bench/kernels.html`;
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`  [page] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`  [page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => typeof window.runKernelBench === 'function', null, { timeout: 120_000 });
  const t0 = Date.now();
  const result = await page.evaluate((c) => window.runKernelBench(c), config);
  console.log(`\nadapter: ${result.adapter}  (bench took ${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
  console.table(
    result.matmul.map((r) => ({
      'm×n×k': `${r.m}×${r.n}×${r.k}`,
      'ours GFLOP/s': +r.gflops.toFixed(3),
      'tfjs GFLOP/s': +r.peer_gflops.toFixed(3),
      ratio: +r.ratio.toFixed(2),
      variant: r.variant,
    })),
  );
  console.table(result.elementwise.map((r) => ({ op: r.op, n: r.n, shape: r.shape.join('×'), 'GB/s': +r.gbps.toFixed(3) })));
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${outFile}`);
} finally {
  await browser?.close();
  await server.close();
}
