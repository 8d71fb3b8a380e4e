import { useEffect, useState } from 'react';
import type { AdapterSummary } from '../gpu/device';
import type { SelfTestResult } from '../train/selftest';
import { getEngine } from './engine';

type State =
  | { phase: 'starting' }
  | { phase: 'unavailable'; reason: string; message: string }
  | { phase: 'ready'; adapter: AdapterSummary; selfTest?: SelfTestResult; selfTestError?: string };

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

/** Acquires the adapter in the worker, shows what it is, and runs the matmul self-test. */
export function GpuStatus() {
  const [state, setState] = useState<State>({ phase: 'starting' });
  useEffect(() => {
    let cancelled = false;
    (async () => {
      const engine = getEngine();
      const init = await engine.init();
      if (cancelled) return;
      if (!init.ok) {
        setState({ phase: 'unavailable', reason: init.reason, message: init.message });
        return;
      }
      setState({ phase: 'ready', adapter: init.adapter });
      try {
        const selfTest = await engine.selfTest();
        if (!cancelled) setState({ phase: 'ready', adapter: init.adapter, selfTest });
      } catch (e) {
        if (!cancelled) setState({ phase: 'ready', adapter: init.adapter, selfTestError: String(e) });
      }
    })().catch((e) => !cancelled && setState({ phase: 'unavailable', reason: 'worker', message: String(e) }));
    return () => {
      cancelled = true;
    };
  }, []);

  if (state.phase === 'starting') return <section className="panel" aria-busy="true"><p className="muted">Starting the GPU worker…</p></section>;
  if (state.phase === 'unavailable') {
    return (
      <section className="panel error" role="alert" data-testid="webgpu-missing">
        <h2>WebGPU is not available</h2>
        <p>{state.message}</p>
        <ul>
          <li>Use Chrome or Edge 113+ (desktop), or Safari 26+; Firefox needs <code>dom.webgpu.enabled</code>.</li>
          <li>Open the page from <code>https://</code> or <code>http://localhost</code>: WebGPU exists only in secure contexts.</li>
          <li>On Linux, start Chrome with <code>--enable-unsafe-webgpu --enable-features=Vulkan</code>, and check <code>chrome://gpu</code>.</li>
        </ul>
      </section>
    );
  }
  const { adapter, selfTest, selfTestError } = state;
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
