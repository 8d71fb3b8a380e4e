import { GpuStatus } from './GpuStatus';

export function App() {
  return (
    <div className="app">
      <header className="app-header">
        <h1>PEFT Playground</h1>
        <p className="muted">
          Train a small BERT in your browser on WebGPU — full fine-tuning, adapters, LoRA, AdaMix, AdapterDrop — and compare them.
        </p>
      </header>
      <main>
        <GpuStatus />
      </main>
    </div>
  );
}
