import { useEffect } from 'react';
import { GpuStatus, GpuProblem } from './GpuStatus';
import { DatasetPicker, MethodPicker, ModelPicker, TrainButtons, TrainingFields } from './components/Controls';
import { Charts } from './components/Charts';
import { ExportPanel, RunsTable } from './components/RunsTable';
import { AdamixPanel, AdapterDropPanel, TryIt } from './components/Panels';
import { ComposePanel } from './components/Compose';
import { useStore } from './store';
import * as ctl from './controller';

let booted = false;

/** space = train/pause, s = step, r = reset — not while typing, and not with a modifier held */
function onKey(e: KeyboardEvent): void {
  const t = e.target as HTMLElement | null;
  if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
  if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
  if (e.key === ' ') {
    if (t?.tagName === 'BUTTON') return; // space activates the focused button itself
    e.preventDefault();
    ctl.toggleTrain();
  } else if (e.key === 's') {
    if (!ctl.isTraining()) void ctl.step();
  } else if (e.key === 'r') {
    ctl.reset();
  }
}

function BusyBar() {
  const busy = useStore((s) => s.busy);
  const error = useStore((s) => s.error);
  const notes = useStore((s) => s.configNotes);
  return (
    <div className="status-bar" aria-live="polite">
      {busy && (
        <div className="busy" data-testid="busy" role="status">
          <progress {...(busy.fraction !== undefined ? { value: busy.fraction, max: 1 } : {})} aria-label={busy.label} /> {busy.label}
        </div>
      )}
      {error && <p className="bad" role="alert" data-testid="page-error">✗ {error}</p>}
      {notes.map((n) => <p className="warn" key={n}>⚠ link: {n}</p>)}
    </div>
  );
}

export function App() {
  const gpu = useStore((s) => s.gpu);
  useEffect(() => {
    if (!booted) {
      booted = true;
      void ctl.boot();
    }
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  const problem = gpu.phase === 'unavailable' || gpu.phase === 'lost';
  return (
    <div className="app">
      <header className="app-header">
        <h1>PEFT Playground</h1>
        <p className="muted">Train a small BERT in your browser on WebGPU — full fine-tuning, adapters, LoRA, AdaMix, AdapterDrop — and compare them on the same data, model and seed.</p>
      </header>
      {problem ? (
        <GpuProblem />
      ) : (
        <div className="layout">
          <aside className="controls" aria-label="configuration">
            <TrainButtons />
            <BusyBar />
            <DatasetPicker />
            <ModelPicker />
            <MethodPicker />
            <TrainingFields />
          </aside>
          <main className="views">
            <Charts />
            <RunsTable />
            <AdamixPanel />
            <AdapterDropPanel />
            <ComposePanel />
            <TryIt />
            <ExportPanel />
            <GpuStatus />
          </main>
        </div>
      )}
    </div>
  );
}
