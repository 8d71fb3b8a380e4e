#!/usr/bin/env node
// `npm test`: type-check, then every Vitest project (unit in Node, gpu in headless Chromium on
// WebGPU, e2e driving the page), then print the closing line CI reads: "N passed, N failed".
// A GPU suite that ran no test counts as a failure: "no adapter" must never look green.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';

const extra = process.argv.slice(2);
mkdirSync('test-results', { recursive: true });
const report = 'test-results/vitest.json';
rmSync(report, { force: true });

let failedSteps = 0;
console.log('> tsc --noEmit');
const tsc = spawnSync('npx', ['tsc', '--noEmit', '-p', 'tsconfig.json'], { stdio: 'inherit' });
if (tsc.status !== 0) {
  console.error('type check failed');
  failedSteps++;
}

console.log('> vitest run');
const vt = spawnSync(
  'npx',
  ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra],
  { stdio: 'inherit', env: { ...process.env, FORCE_COLOR: process.env.CI ? '0' : process.env.FORCE_COLOR } },
);

let passed = 0, failed = 0, skipped = 0;
const perProject = {};
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  for (const file of r.testResults ?? []) {
    const project = file.name.includes('/tests/gpu/') ? 'gpu' : file.name.includes('/tests/e2e/') ? 'e2e' : 'unit';
    perProject[project] ??= { passed: 0, failed: 0, skipped: 0 };
    if ((file.assertionResults ?? []).length === 0 && file.status === 'failed') {
      // a file that failed to load (import error, no adapter in beforeAll...) counts as a failure
      failed++;
      perProject[project].failed++;
      console.error(`FAILED to run: ${file.name}: ${file.message ?? ''}`);
    }
    for (const t of file.assertionResults ?? []) {
      if (t.status === 'passed') { passed++; perProject[project].passed++; }
      else if (t.status === 'failed') { failed++; perProject[project].failed++; }
      else { skipped++; perProject[project].skipped++; }
    }
  }
} else {
  console.error('vitest wrote no report');
  failedSteps++;
}
if (!perProject.gpu || perProject.gpu.passed === 0) {
  if (!extra.length) {
    console.error('the GPU suite ran no test: WebGPU tests must run, not skip');
    failedSteps++;
  }
}
for (const [p, c] of Object.entries(perProject)) {
  console.log(`  ${p}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped`);
}
failed += failedSteps;
if (vt.status !== 0 && failed === 0) failed = 1; // vitest failed for a reason the report does not show
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
