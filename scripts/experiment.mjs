// npm run experiment -- --config experiments/<name>.json — trains a grid (runs × tasks × seeds)
// headless on the playground's Engine and writes docs/results/<name>.md and docs/results/<name>.json.
//
// The jobs run in headless Chromium (WebGPU: SwiftShader here, the real GPU elsewhere) on
// bench/experiment.html, one after another in one page. After each finished job its result is
// appended to docs/results/<name>.jobs.jsonl; a restarted grid skips every job found there whose
// key (run label × task × seed × hash of the job's whole configuration, base weights included)
// still matches, so an interrupted grid resumes where it stopped and an edited one reruns only
// what changed. The pure logic (validation, keys, resume loop, aggregation) is src/train/experiment.ts.
//
//   node scripts/experiment.mjs --config FILE   a grid (experiments/*.json) or a run exported from the page
//        [--url 'http://…/?ds=sentiment&method=lora&…']   a page link instead of --config
//        [--quick]        2 steps per job, first seed only, outputs named <name>-quick (a smoke test)
//        [--max-jobs N]   stop after N jobs this session (the rest resume next time)
//        [--out-dir DIR]  default docs/results
//        [--dry-run]      check the configuration and list the jobs, train nothing
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, dirname, resolve, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { createServer } from 'vite';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  if (i + 1 >= args.length || args[i + 1].startsWith('--')) fail(`${name} needs a value`);
  return args[i + 1];
};
function fail(msg) {
  console.error(`experiment: ${msg}`);
  process.exit(2);
}
const known = ['--config', '--url', '--quick', '--max-jobs', '--out-dir', '--dry-run'];
for (const a of args) if (a.startsWith('--') && !known.includes(a)) fail(`unknown option ${a} (known: ${known.join(', ')})`);
const configPath = option('--config');
const pageUrl = option('--url');
if (!configPath === !pageUrl) fail('give --config FILE (a grid or a run exported from the page) or --url LINK (a page link)');
const maxJobs = option('--max-jobs') !== undefined ? Number(option('--max-jobs')) : Infinity;
if (!(maxJobs >= 0)) fail('--max-jobs needs a whole number ≥ 0');
const outDir = resolve(root, option('--out-dir') ?? 'docs/results');

// ---- what exists on disk: built-in tasks, models and their layer counts ------------------------------
const publicDir = resolve(root, 'public');
const taskIds = JSON.parse(readFileSync(resolve(publicDir, 'data/index.json'), 'utf8')).map((e) => e.id);
const modelsDir = resolve(publicDir, 'models');
const models = existsSync(modelsDir) ? readdirSync(modelsDir).filter((d) => existsSync(resolve(modelsDir, d, 'config.json'))) : [];
const layers = Object.fromEntries(models.map((m) => [m, JSON.parse(readFileSync(resolve(modelsDir, m, 'config.json'), 'utf8')).num_hidden_layers]));
const modelIndex = existsSync(resolve(modelsDir, 'index.json')) ? JSON.parse(readFileSync(resolve(modelsDir, 'index.json'), 'utf8')) : [];
const defaultModel = modelIndex[0] ? (modelIndex[0].path ?? modelIndex[0].id).replace(/^models\//, '').replace(/\/+$/, '') : null;
if (defaultModel && layers[defaultModel] !== undefined) layers.default = layers[defaultModel];

const server = await createServer({
  root,
  configFile: resolve(root, 'vite.config.ts'),
  cacheDir: resolve(root, 'node_modules/.vite-experiment'),
  logLevel: 'warn',
  server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  optimizeDeps: { entries: ['bench/experiment.html'] },
});
let browser;
let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  await browser?.close().catch(() => {});
  await server.close().catch(() => {});
  process.exit(code);
}
process.on('SIGINT', () => {
  console.error('\nexperiment: interrupted; finished jobs are kept in the state file, run the same command to resume');
  shutdown(130);
});
process.on('SIGTERM', () => shutdown(143));

try {
  const lib = await server.ssrLoadModule('/src/train/experiment.ts');
  // ---- the configuration -----------------------------------------------------------------------------
  let raw, name, command;
  if (pageUrl) {
    const { configFromSearch } = await server.ssrLoadModule('/src/ui/config.ts');
    const search = pageUrl.includes('?') ? pageUrl.slice(pageUrl.indexOf('?')) : pageUrl;
    const { config, notes } = configFromSearch(search);
    if (notes.length) fail(`the link has values the page would ignore:\n  - ${notes.join('\n  - ')}`);
    raw = config;
    name = `page-${config.method.kind}-${config.dataset}-seed${config.seed}`;
    command = `npm run experiment -- --url '${pageUrl}'`;
  } else {
    const file = resolve(process.cwd(), configPath);
    if (!existsSync(file)) fail(`no such configuration file: ${configPath}`);
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      fail(`${configPath} is not valid JSON: ${e.message}`);
    }
    name = basename(file).replace(/\.json$/, '');
    command = `npm run experiment -- --config ${relative(root, file)}`;
  }
  let exp;
  try {
    exp = lib.parseExperiment(raw, { tasks: taskIds, models, layers }, name);
  } catch (e) {
    if (e instanceof lib.ExperimentConfigError || e?.name === 'ExperimentConfigError') fail(`${configPath ?? 'the link'}: ${e.message}`);
    throw e;
  }
  if (flag('--quick')) {
    // a smoke test of the whole path: tiny jobs, separate outputs that never mix with real results
    const quick = (t) => ({ ...t, steps: 2, evalEvery: 0 });
    exp = { ...exp, name: `${exp.name}-quick`, seeds: exp.seeds.slice(0, 1), train: quick(exp.train), runs: exp.runs.map((r) => ({ ...r, train: quick(r.train) })) };
    command += ' --quick';
  }
  const modelDir = exp.model === 'default' ? defaultModel : exp.model;
  if (!modelDir) fail('no default model: public/models/index.json lists none');
  const weights = resolve(modelsDir, modelDir, 'model.safetensors');
  const modelDigest = createHash('sha256').update(readFileSync(weights)).digest('hex').slice(0, 16);
  const jobs = lib.expandJobs(exp, modelDigest);

  mkdirSync(outDir, { recursive: true });
  const statePath = resolve(outDir, `${exp.name}.jobs.jsonl`);
  const { done, notes } = lib.readState(existsSync(statePath) ? readFileSync(statePath, 'utf8') : '', jobs);
  for (const n of notes) console.log(`note: ${n}`);
  console.log(`${exp.name}: ${exp.runs.length} runs × ${exp.tasks.length} tasks × ${exp.seeds.length} seeds = ${jobs.length} jobs; ${done.size} already finished (${relative(root, statePath)})`);
  if (flag('--dry-run')) {
    for (const j of jobs) console.log(`  ${done.has(j.key) ? 'done' : 'todo'}  ${j.key}`);
    await shutdown(0);
  }

  const machine = {
    adapter: '(not started)',
    model: `${modelDir} (public/models/${modelDir}, model.safetensors sha256 ${modelDigest}…)`,
    modelDigest,
    host: `${os.cpus().length} CPU cores (${os.cpus()[0]?.model ?? 'unknown'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}, Node ${process.version}`,
    date: new Date().toISOString().slice(0, 10),
    command,
  };
  // earlier sessions' adapter description, until this one's page says which adapter it has
  const jsonPath = resolve(outDir, `${exp.name}.json`);
  if (configPath && resolve(process.cwd(), configPath) === jsonPath) fail(`the results file ${relative(root, jsonPath)} would overwrite the configuration: keep configurations out of --out-dir`);
  if (existsSync(jsonPath)) {
    try {
      machine.adapter = JSON.parse(readFileSync(jsonPath, 'utf8')).machine?.adapter ?? machine.adapter;
    } catch {}
  }
  const writeOutputs = () => {
    const agg = lib.aggregate(exp, jobs, done);
    writeFileSync(resolve(outDir, `${exp.name}.md`), lib.renderMarkdown(exp, agg, machine) + '\n');
    const results = jobs.filter((j) => done.has(j.key)).map((j) => done.get(j.key));
    writeFileSync(jsonPath, JSON.stringify({ name: exp.name, config: raw, experiment: exp, machine, jobs: results, aggregation: agg }, null, 2) + '\n');
  };

  const todo = jobs.filter((j) => !done.has(j.key)).slice(0, maxJobs);
  if (todo.length > 0) {
    const { chromium } = await import('playwright');
    const { chromiumArgs, chromiumPath } = await import('./chromium.mjs');
    await server.listen();
    const url = `http://127.0.0.1:${server.httpServer.address().port}/bench/experiment.html`;
    browser = await chromium.launch({ executablePath: chromiumPath(), args: chromiumArgs, headless: true });
    const page = await browser.newPage();
    const tty = process.stdout.isTTY;
    page.on('console', (m) => {
      if (!tty) console.log(`  [page] ${m.text()}`);
    });
    page.on('pageerror', (e) => console.error(`  [page error] ${e.message}`));
    await page.goto(url);
    await page.waitForFunction(() => typeof window.runExperimentJob === 'function', null, { timeout: 180_000 });
    machine.adapter = await page.evaluate(() => window.experimentInit());
    console.log(`adapter: ${machine.adapter}`);
    const t0 = Date.now();
    let ran = 0;
    const show = (line) => (tty ? process.stdout.write(`\r${line.padEnd(110).slice(0, 110)}`) : console.log(line));
    show(lib.progressLine(done.size, jobs.length, 0, 0, `next: ${todo[0].spec.run} ${todo[0].spec.task} seed ${todo[0].spec.seed}`));
    await lib.runGrid(
      jobs.filter((j) => done.has(j.key) || todo.includes(j)),
      done,
      (job) => page.evaluate((spec) => window.runExperimentJob(spec), { ...job.spec, key: job.key, hash: job.hash }),
      (r, p) => {
        r.finishedAt = new Date().toISOString();
        // the state line goes first: an interruption after it loses nothing
        appendFileSync(statePath, lib.stateLine(r));
        writeOutputs();
        ran = p.ranNow;
        const total = jobs.filter((j) => done.has(j.key)).length;
        show(lib.progressLine(total, jobs.length, (Date.now() - t0) / 1000, ran, `${r.run} ${r.task} seed ${r.seed}: ${r.error ? `diverged (${r.error})` : `dev ${(100 * r.dev.accuracy).toFixed(1)} %, ${r.msPerStep.toFixed(0)} ms/step`}`));
      },
    );
    if (tty) process.stdout.write('\n');
  }
  writeOutputs();
  const left = jobs.length - jobs.filter((j) => done.has(j.key)).length;
  console.log(`wrote ${relative(root, resolve(outDir, `${exp.name}.md`))} and .json; ${jobs.length - left} of ${jobs.length} jobs finished${left ? ` (${left} left: run the same command to resume)` : ''}`);
  await shutdown(0);
} catch (e) {
  console.error(`experiment: ${e?.stack ?? e}`);
  await shutdown(1);
}
