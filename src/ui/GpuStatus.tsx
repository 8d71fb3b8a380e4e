import { useEffect, useState } from 'react';
import type { SelfTestResult } from '../train/selftest';
import { getEngine } from './engine';
import { useStore } from './store';
import * as ctl from './controller';

const SHOWN_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
];

function fmtBytes(n: number): string {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(0)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(0)} KiB` : String(n);
}

/** The whole page when WebGPU is missing or the device was lost: what happened and what to do. */
export function GpuProblem() {
  const gpu = useStore((s) => s.gpu);
  if (gpu.phase === 'lost') {
    const run = gpu.run;
    return (
      <section className="panel error" role="alert" data-testid="device-lost">
        <h2>The GPU device was lost</h2>
        <p>{gpu.message || 'The browser reset the GPU (a driver update, a crash, or too much memory in use).'}</p>
        <p>
          {run
            ? <>Run <b>{run.label}</b> was {run.wasTraining ? 'training' : 'loaded'}; its last checkpoint is {run.checkpointStep ? `at step ${run.checkpointStep}` : 'not written yet, so it starts again at step 0 with the same seed'}.</>
            : 'No run was in progress.'}
        </p>
        <div className="row">
          <button type="button" className="primary" data-testid="resume" onClick={() => void ctl.resumeAfterDeviceLoss()}>
            {run ? `Resume ${run.label}${run.checkpointStep ? ` from step ${run.checkpointStep}` : ''}` : 'Restart the GPU'}
          </button>
        </div>
        <ul>
          <li>Resume starts a new GPU device, loads the model and the data again, restores the run's last checkpoint (weights, optimizer state, step, random state) and {run?.wasTraining ? 'trains on' : 'waits for Train'}; the curves continue from that step.</li>
          <li>If the device is lost again, close other GPU-heavy tabs, then <button type="button" onClick={() => location.reload()}>reload the page</button> — the link keeps your whole setup, and runs that paused or finished come back as curves.</li>
        </ul>
      </section>
    );
  }
  if (gpu.phase !== 'unavailable') return null;
  return (
    <section className="panel error" role="alert" data-testid="webgpu-missing">
      <h2>WebGPU is not available</h2>
      <p>{gpu.message}</p>
      <ul>
        <li>Use Chrome or Edge 113+ (desktop), or Safari 26+; Firefox needs <code>dom.webgpu.enabled</code>.</li>
        <li>Open the page from <code>https://</code> or <code>http://localhost</code>: WebGPU exists only in secure contexts.</li>
        <li>On Linux, start Chrome with <code>--enable-unsafe-webgpu --enable-features=Vulkan</code>, and check <code>chrome://gpu</code>.</li>
      </ul>
    </section>
  );
}

/** The adapter the worker got, its limits, and a matmul self-test against the CPU reference. */
export function GpuStatus() {
  const gpu = useStore((s) => s.gpu);
  const [selfTest, setSelfTest] = useState<SelfTestResult | null>(null);
  const [selfTestError, setSelfTestError] = useState<string | null>(null);
  const ready = gpu.phase === 'ready';
  useEffect(() => {
    if (!ready) return;
    let cancelled = false;
    getEngine().selfTest().then((r) => !cancelled && setSelfTest(r), (e) => !cancelled && setSelfTestError(String(e)));
    return () => { cancelled = true; };
  }, [ready]);
  if (gpu.phase !== 'ready') return null;
  const { adapter } = gpu;
  return (
    <section className="panel" data-testid="gpu-status">
      <h2>GPU</h2>
      <dl className="kv">
        <dt>Adapter</dt>
        <dd data-testid="adapter-name">
          {adapter.vendor || 'unknown vendor'} · {adapter.architecture || 'unknown architecture'}
          {adapter.description ? ` · ${adapter.description}` : ''}
          {adapter.isFallbackAdapter ? ' (software fallback: correct but slow)' : ''}
        </dd>
        {SHOWN_LIMITS.filter((k) => k in adapter.limits).map((k) => (
          <div key={k} className="kv-row">
            <dt>{k}</dt>
            <dd>{/Size$/.test(k) ? fmtBytes(adapter.limits[k]) : adapter.limits[k]}</dd>
          </div>
        ))}
        <dt>Features</dt>
        <dd className="features">{adapter.features.join(', ') || 'none'}</dd>
      </dl>
      <h3>Self-test</h3>
      {selfTestError ? (
        <p className="bad" data-testid="selftest">✗ self-test failed to run: {selfTestError}</p>
      ) : !selfTest ? (
        <p className="muted" data-testid="selftest">running a matmul on the GPU…</p>
      ) : (
        <p className={selfTest.passed ? 'good' : 'bad'} data-testid="selftest">
          {selfTest.passed ? '✓ passed' : '✗ FAILED'}: {selfTest.name} {selfTest.m}×{selfTest.k} · {selfTest.k}×{selfTest.n} matches the CPU
          reference, max error {selfTest.maxAbsError.toExponential(2)} (tolerance {selfTest.tolerance.toExponential(1)}),{' '}
          {selfTest.ms.toFixed(1)} ms
        </p>
      )}
    </section>
  );
}
