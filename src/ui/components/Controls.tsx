// The left column: data, model, method and its hyper-parameters, AdapterDrop, the training numbers,
// and Train / Pause / Step / Reset. Every control has a label; each knob has its one-line explanation.
import { useState, type DragEvent } from 'react';
import { useShallow } from 'zustand/react/shallow';
import type { MethodKind } from '../../model/config';
import { useStore, currentRun } from '../store';
import { methodWithDefaults, parseHyperParam, type PageConfig } from '../config';
import { HP_INFO, METHOD_INFO, PICKER_METHODS, hyperParamsOf, methodLabel } from '../methods';
import * as ctl from '../controller';

export function DatasetPicker() {
  // selected fields only: metric updates during training do not redraw the pickers
  const { builtins, dataset, datasetError, config } = useStore(useShallow((s) => ({ builtins: s.builtins, dataset: s.dataset, datasetError: s.datasetError, config: s.config })));
  const [dragging, setDragging] = useState(false);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    const f = e.dataTransfer.files[0];
    if (f) void ctl.importDatasetFile(f);
  };
  const info = builtins.find((b) => b.id === config.dataset);
  return (
    <fieldset className="group" onDragOver={(e) => { e.preventDefault(); setDragging(true); }} onDragLeave={() => setDragging(false)} onDrop={onDrop} data-dragging={dragging || undefined}>
      <legend>Dataset</legend>
      <label className="field">
        <span>Built-in</span>
        <select value={info ? config.dataset : ''} onChange={(e) => void ctl.loadBuiltinDataset(e.target.value)} data-testid="dataset-select">
          {!info && <option value="">{dataset?.name ?? '—'}</option>}
          {builtins.map((b) => <option key={b.id} value={b.id}>{b.name}</option>)}
        </select>
      </label>
      <p className="hint">{info?.description ?? dataset?.description}</p>
      <label className="field file">
        <span>Or import CSV / TSV / JSONL (or drop it here)</span>
        <input type="file" accept=".csv,.tsv,.jsonl,.json,.txt" data-testid="dataset-file" onChange={(e) => { const f = e.target.files?.[0]; if (f) void ctl.importDatasetFile(f); e.target.value = ''; }} />
      </label>
      {dataset && (
        <p className="hint" data-testid="dataset-summary">
          <b>{dataset.name}</b>: {dataset.train} train · {dataset.dev} dev · {dataset.test} test · classes {dataset.classes.join(', ')}
        </p>
      )}
      {dataset?.warnings.map((w) => <p key={w} className="warn">⚠ {w}</p>)}
      {datasetError && <p className="bad" role="alert" data-testid="dataset-error">✗ {datasetError}</p>}
    </fieldset>
  );
}

export function ModelPicker() {
  const { model, modelError, config, savedModels } = useStore(useShallow((s) => ({ model: s.model, modelError: s.modelError, config: s.config, savedModels: s.savedModels })));
  const [url, setUrl] = useState(config.model === 'default' || config.model.startsWith('saved:') ? '' : config.model);
  const savedId = config.model.startsWith('saved:') ? config.model.slice('saved:'.length) : '';
  return (
    <fieldset className="group">
      <legend>Base model</legend>
      <p className="hint" data-testid="model-info">
        {model ? <><b>{model.name}</b> · {model.config.numLayers} layers · d = {model.config.hiddenSize} · {(model.parameters / 1e6).toFixed(2)} M parameters. {model.description}</> : 'loading…'}
      </p>
      <div className="row">
        <button type="button" onClick={() => void ctl.loadModel('default')}>Shipped default</button>
      </div>
      <form className="row" onSubmit={(e) => { e.preventDefault(); void ctl.loadModel(url); }}>
        <label className="field grow">
          <span>Hugging Face id or URL</span>
          <input value={url} onChange={(e) => setUrl(e.target.value)} placeholder="prajjwal1/bert-tiny" />
        </label>
        <button type="submit" disabled={!url.trim()}>Load</button>
      </form>
      <label className="field">
        <span>Or a saved run: its trained weights become the base of new runs</span>
        <select data-testid="saved-model-select" value={savedModels.some((m) => m.id === savedId) ? savedId : ''} disabled={savedModels.length === 0}
          onChange={(e) => e.target.value && void ctl.loadModel(`saved:${e.target.value}`)}>
          <option value="">{savedModels.length ? '— pick a saved run —' : 'none yet: finished full FT, head-only, BitFit and LoRA runs appear here'}</option>
          {savedModels.map((m) => <option key={m.id} value={m.id}>{m.name}</option>)}
        </select>
      </label>
      <label className="field file">
        <span>Or local files: config.json + model.safetensors (+ vocab.txt)</span>
        <input type="file" multiple accept=".json,.safetensors,.txt" onChange={(e) => { void ctl.loadModelFiles([...(e.target.files ?? [])]); e.target.value = ''; }} />
      </label>
      {modelError && <p className="bad" role="alert" data-testid="model-error">✗ {modelError}</p>}
    </fieldset>
  );
}

function HyperParam({ name, value }: { name: string; value: unknown }) {
  const info = HP_INFO[name];
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const commit = (raw: string) => {
    const r = parseHyperParam(name, raw);
    if ('error' in r) { setError(r.error); return; }
    setError(null);
    setText(null);
    ctl.setConfig({ method: { ...useStore.getState().config.method, [name]: r.value } as PageConfig['method'] });
  };
  if (!info) return null;
  const id = `hp-${name}`;
  let input;
  if (info.type === 'bool') {
    input = <input id={id} type="checkbox" checked={Boolean(value)} onChange={(e) => commit(String(e.target.checked))} />;
  } else if (info.type === 'choice') {
    input = <select id={id} value={String(value)} onChange={(e) => commit(e.target.value)}>{info.choices!.map((c) => <option key={c}>{c}</option>)}</select>;
  } else if (info.type === 'targets') {
    const list = value as string[];
    input = (
      <span className="checks" id={id}>
        {info.choices!.map((t) => (
          <label key={t} className="check">
            <input type="checkbox" checked={list.includes(t)} onChange={(e) => commit((e.target.checked ? [...list, t] : list.filter((x) => x !== t)).join(','))} /> {t}
          </label>
        ))}
      </span>
    );
  } else {
    input = <input id={id} type="number" min={info.min} max={info.max} step={info.type === 'int' ? 1 : 'any'} value={text ?? String(value)} onChange={(e) => setText(e.target.value)} onBlur={(e) => commit(e.target.value)} onKeyDown={(e) => e.key === 'Enter' && commit((e.target as HTMLInputElement).value)} />;
  }
  return (
    <div className="field">
      <label htmlFor={id}>{info.label}</label>
      {input}
      <span className="hint">{info.line}</span>
      {error && <span className="bad" role="alert">{error}</span>}
    </div>
  );
}

export function MethodPicker() {
  const { config, model } = useStore(useShallow((s) => ({ config: s.config, model: s.model })));
  const method = config.method;
  const L = model?.config.numLayers ?? 12;
  return (
    <fieldset className="group">
      <legend>Method</legend>
      <label className="field">
        <span>Fine-tuning method</span>
        <select data-testid="method-select" value={method.kind} onChange={(e) => ctl.setConfig({ method: methodWithDefaults(e.target.value as MethodKind) })}>
          {PICKER_METHODS.map((k) => <option key={k} value={k}>{methodLabel(k)}</option>)}
        </select>
      </label>
      <p className="hint">{METHOD_INFO[method.kind]?.line}</p>
      {hyperParamsOf(method.kind).map((name) => <HyperParam key={`${method.kind}-${name}`} name={name} value={(method as unknown as Record<string, unknown>)[name]} />)}
      <div className="field">
        <label htmlFor="drop-mode">AdapterDrop</label>
        <select id="drop-mode" value={config.adapterDrop.mode} onChange={(e) => ctl.setConfig({ adapterDrop: { mode: e.target.value as 'none', n: config.adapterDrop.n } })}>
          <option value="none">none</option>
          <option value="specialized">specialised: drop the lowest n layers' modules</option>
          <option value="robust">robust: random n per step</option>
        </select>
        <span className="hint">Dropping the modules of the lowest layers skips their backward pass in training and lets inference share those layers' work.</span>
      </div>
      {config.adapterDrop.mode === 'specialized' && (
        <div className="field">
          <label htmlFor="drop-n">dropped layers n</label>
          <input id="drop-n" type="number" min={0} max={L - 1} value={config.adapterDrop.n} onChange={(e) => ctl.setConfig({ adapterDrop: { mode: 'specialized', n: Math.max(0, Math.min(L - 1, Math.round(Number(e.target.value) || 0))) } })} />
        </div>
      )}
    </fieldset>
  );
}

const TRAIN_FIELDS: { key: 'seed' | 'lr' | 'steps' | 'batchSize' | 'seqLen' | 'evalEvery'; label: string; line: string; step: string; min: number }[] = [
  { key: 'seed', label: 'seed', line: 'same seed: same split, initialisation, batches and routes', step: '1', min: 0 },
  { key: 'lr', label: 'learning rate', line: 'peak AdamW step size (linear warm-up, linear decay); PEFT methods like 1e-3, full FT 5e-5', step: 'any', min: 0 },
  { key: 'steps', label: 'steps', line: 'length of the schedule', step: '1', min: 1 },
  { key: 'batchSize', label: 'batch size', line: 'examples per step', step: '1', min: 1 },
  { key: 'seqLen', label: 'sequence length', line: 'tokens per example after WordPiece (longer ones are cut)', step: '1', min: 4 },
  { key: 'evalEvery', label: 'evaluate every', line: 'steps between dev evaluations (0: only at the end)', step: '1', min: 0 },
];

export function TrainingFields() {
  const config = useStore((s) => s.config);
  return (
    <fieldset className="group grid2">
      <legend>Training</legend>
      {TRAIN_FIELDS.map((f) => (
        <label className="field" key={f.key} title={f.line}>
          <span>{f.label}</span>
          <input type="number" step={f.step} min={f.min} value={config[f.key]} data-testid={`cfg-${f.key}`}
            onChange={(e) => { const v = Number(e.target.value); if (e.target.value !== '' && Number.isFinite(v) && v >= f.min) ctl.setConfig({ [f.key]: v }); }} />
        </label>
      ))}
    </fieldset>
  );
}

export function TrainButtons() {
  const run = useStore((s) => currentRun(s));
  const queue = useStore((s) => s.queue.length);
  const ready = useStore((s) => s.gpu.phase === 'ready' && !!s.model && !!s.dataset);
  const training = run?.state === 'training';
  const steps = useStore((s) => s.config.steps);
  const done = run?.steps.at(-1)?.step ?? 0;
  return (
    <div className="train-buttons">
      <div className="row">
        <button type="button" className="primary" data-testid="train" disabled={!ready} onClick={ctl.toggleTrain} aria-keyshortcuts="Space">
          {training ? '❚❚ Pause' : '▶ Train'}
        </button>
        <button type="button" data-testid="step" disabled={!ready || training} onClick={() => void ctl.step()} aria-keyshortcuts="s">Step</button>
        <button type="button" data-testid="reset" disabled={!ready} onClick={ctl.reset} aria-keyshortcuts="r">Reset</button>
        <button type="button" data-testid="compare" disabled={!ready || training} onClick={() => void ctl.compareMethods()}>Compare methods</button>
      </div>
      <p className="hint">Keys: <kbd>space</kbd> train/pause · <kbd>s</kbd> step · <kbd>r</kbd> reset{queue ? ` · ${queue} method(s) queued` : ''}</p>
      {run && (
        <div className="progress-line" data-testid="run-status">
          <progress max={run.config.steps} value={done} aria-label="training progress" />
          <span>{run.label}: step {done}/{run.config.steps} · {run.state}{run.message ? ` — ${run.message}` : ''}</span>
        </div>
      )}
      {!run && steps > 0 && <p className="hint">Press Train to start a run of the setup above.</p>}
    </div>
  );
}
