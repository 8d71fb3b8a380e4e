// npm run bench:train — training speed of every PEFT method and of AdapterDrop in headless Chromium.
// Starts a Vite dev server on a free port, opens bench/train.html in Chromium with WebGPU
// (SwiftShader here, the real GPU elsewhere), drives the playground's Engine in the page on a
// randomly initialised BERT with the real bert-base-uncased vocabulary and the built-in sentiment
// dataset, prints tables and writes bench/train.json.
//
//   node scripts/bench-train.mjs [--full] [--quick] [--hidden 128] [--layers 4] [--heads 4]
//        [--intermediate 512] [--seq 32] [--batch 16] [--warmup 1] [--steps 3] [--rounds 3] [--out file.json]
//   default: the setting that fits a software GPU (SwiftShader, 2 cores) in a few minutes:
//            hidden 128, 4 layers, 4 heads, intermediate 512, seq 32, batch 16
//   --full:  the playground's default setting (seq 64, batch 32), for a machine with a GPU
//   --quick: fewer steps, one round, two methods and no AdapterDrop (a smoke test)
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
const num = (name) => (option(name) !== undefined ? Number(option(name)) : undefined);

// 3 rounds over all configurations, each: 1 + 1 warm-up steps and 3 timed steps; the fastest round of
// each is kept: about 5 minutes on SwiftShader (2 cores)
const config = { hiddenSize: 128, numLayers: 4, numHeads: 4, intermediateSize: 512, seqLen: 32, batchSize: 16, warmupSteps: 1, steps: 3, rounds: 3 };
if (flag('--full')) Object.assign(config, { seqLen: 64, batchSize: 32 });
if (flag('--quick')) Object.assign(config, { warmupSteps: 1, steps: 2, rounds: 1, methods: ['full', 'houlsby'], adapterDrop: false, inferExamples: config.batchSize });
for (const [key, name] of [
  ['hiddenSize', '--hidden'], ['numLayers', '--layers'], ['numHeads', '--heads'], ['intermediateSize', '--intermediate'],
  ['seqLen', '--seq'], ['batchSize', '--batch'], ['steps', '--steps'], ['rounds', '--rounds'], ['warmupSteps', '--warmup'],
]) {
  if (num(name) !== undefined) config[key] = num(name);
}
if (config.inferExamples === undefined) config.inferExamples = 3 * config.batchSize;
if (option('--methods')) config.methods = option('--methods').split(',');
const outFile = resolve(root, option('--out') ?? 'bench/train.json');

const server = await createServer({
  root,
  configFile: resolve(root, 'vite.config.ts'),
  // a cache of its own: test runs that share the tree use node_modules/.vite
  cacheDir: resolve(root, 'node_modules/.vite-bench-train'),
  logLevel: 'warn',
  server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  optimizeDeps: { entries: ['bench/train.html'] },
});
let browser;
try {
  await server.listen();
  const address = server.httpServer.address();
  const url = `http://127.0.0.1:${address.port}/bench/train.html`;
  browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`  [page] ${m.text()}`));
  page.on('pageerror', (e) => console.error(`  [page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => typeof window.runTrainBench === 'function', null, { timeout: 120_000 });
  const t0 = Date.now();
  const result = await page.evaluate((c) => window.runTrainBench(c), config);
  const c = result.config;
  console.log(`\nadapter: ${result.adapter}  (bench took ${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  console.log(
    `setting: hidden ${c.hiddenSize}, ${c.numLayers} layers, ${c.numHeads} heads, intermediate ${c.intermediateSize}, ` +
      `vocab ${c.vocabSize}, seq ${c.seqLen}, batch ${c.batchSize} (${c.tokensPerStep} tokens/step); ` +
      `${c.warmupSteps + 1} warm-up steps, ${c.timedSteps} timed steps per round, fastest of ${c.rounds} round-robin rounds\n`,
  );
  const speed = result.derived.speedup_over_full ?? {};
  console.table(
    result.methods.map((r) => ({
      method: r.method,
      'ms/step': r.ms_per_step,
      'tokens/s': Math.round(r.tokens_per_s),
      'vs full': r.method === 'full' ? '1.00×' : speed[r.method] ? `${speed[r.method].speedup.toFixed(2)}×` : '',
      trainable: r.trainable,
      'trainable %': +r.trainable_pct.toFixed(3),
    })),
  );
  if (result.adapterdrop.length) {
    const d = result.derived.adapterdrop;
    console.log(`AdapterDrop (Houlsby, bottleneck ${c.adapterDropMethod.bottleneck}, specialized: adapters of the lowest n layers dropped)`);
    console.table(
      result.adapterdrop.map((r, i) => ({
        n: r.n,
        'train ms/step': r.train_ms ?? '—',
        'train speed-up': d[i].train_speedup ? `${d[i].train_speedup.toFixed(2)}×` : '—',
        'infer ms/batch': r.infer_ms,
        'infer speed-up': `${d[i].infer_speedup.toFixed(2)}×`,
      })),
    );
  }
  const avf = result.derived.adapters_vs_full;
  if (avf) {
    console.log(
      `adapters (Houlsby, Pfeiffer) vs full fine-tuning: ${avf.speedup.toFixed(2)}× (${avf.pct_faster >= 0 ? '+' : ''}${avf.pct_faster} % throughput; seed figure ≈ +60 %)`,
    );
  }
  if (result.derived.adamix_cost_vs_pfeiffer !== undefined) {
    console.log(`AdaMix (4 experts, consistency = 2 forward passes) costs ${result.derived.adamix_cost_vs_pfeiffer.toFixed(2)}× one Pfeiffer adapter`);
  }
  if (result.derived.adamix_lora_cost_vs_lora !== undefined) {
    console.log(`AdaMix-LoRA costs ${result.derived.adamix_lora_cost_vs_lora.toFixed(2)}× LoRA`);
  }
  if (result.adapterdrop.length > 1) {
    const a = result.adapterdrop;
    const lastTrain = [...a].reverse().find((r) => r.train_ms !== null);
    console.log(
      `AdapterDrop: dropping ${lastTrain.n} of ${a.length - 1} layers trains ${(a[0].train_ms / lastTrain.train_ms).toFixed(2)}× as fast; ` +
        `dropping all ${a.length - 1} infers ${(a[0].infer_ms / a[a.length - 1].infer_ms).toFixed(2)}× as fast`,
    );
  }
  writeFileSync(outFile, JSON.stringify(result, null, 2) + '\n');
  console.log(`wrote ${outFile}`);
} finally {
  await browser?.close();
  await server.close();
}
