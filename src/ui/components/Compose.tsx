// The Compose panel (issue 7): stage 1 (task adapters, saved), stage 2 (AdapterFusion as a normal
// run), the fusion attention per layer and task, and multi-task AdapterDrop timing. Every number
// is printed in its cell; colour only repeats it.
import { useEffect, useState } from 'react';
import type { FusionAttentionResult, MultitaskResult } from '../../train/compose';
import { bestDevAccuracy, useStore, type Run } from '../store';
import * as compose from '../compose';

const pct = (x: number) => `${(100 * x).toFixed(1)} %`;

function AttentionTable({ title, view, testId }: { title: string; view: FusionAttentionResult; testId: string }) {
  return (
    <table className="heatmap" aria-label={title} data-testid={testId}>
      <caption>{title}</caption>
      <thead><tr><th scope="col">layer</th>{view.tasks.map((t) => <th scope="col" key={t}>{t}</th>)}</tr></thead>
      <tbody>
        {view.layers.map((row, l) => (
          <tr key={l}>
            <th scope="row">{l}</th>
            {row
              ? row.map((w, t) => (
                  <td key={t} style={{ background: `rgba(36, 88, 211, ${(0.08 + 0.8 * w).toFixed(3)})`, color: w > 0.55 ? '#fff' : undefined }}>{w.toFixed(3)}</td>
                ))
              : <td colSpan={view.tasks.length}>dropped (AdapterDrop)</td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function TaskAdapters() {
  const { adapters, selected, queue, busy } = compose.useCompose();
  const run = useStore((s) => s.runs.find((r) => r.id === s.currentRunId));
  const dataset = useStore((s) => s.dataset);
  const [name, setName] = useState('');
  const [steps, setSteps] = useState(150);
  const training = run?.state === 'training';
  const canSave = run && !run.saved && !training && run.config.method.kind === 'pfeiffer' && run.steps.length > 0;
  const suggested = dataset ? compose.taskNameOf(dataset.id) : 'task';
  return (
    <>
      <h3>Stage 1 — one adapter per task</h3>
      <p className="hint">
        A Pfeiffer adapter trained on one task is saved with its head under the task's name (kept in this browser). Train one with the normal controls and save it,
        or train one for every built-in task in a queue (robust AdapterDrop, so any number of lower layers can be dropped at inference).
      </p>
      <div className="row">
        <label className="field"><span>task name</span><input value={name} placeholder={suggested} onChange={(e) => setName(e.target.value)} data-testid="task-name" /></label>
        <button type="button" data-testid="save-task-adapter" disabled={!canSave || !!busy} onClick={() => void compose.saveCurrentAsTaskAdapter(name.trim() || suggested)}
          title={canSave ? '' : 'train a Pfeiffer adapter run first'}>Save current run as task adapter</button>
      </div>
      <div className="row">
        <label className="field"><span>steps per task</span><input type="number" min={1} value={steps} onChange={(e) => setSteps(Math.max(1, Math.round(Number(e.target.value) || 1)))} data-testid="all-tasks-steps" /></label>
        <button type="button" data-testid="train-all-tasks" disabled={!!queue || !!busy || training} onClick={() => void compose.trainAllTaskAdapters(steps)}>Train adapters for all built-in tasks</button>
      </div>
      {queue && (
        <p className="hint" data-testid="task-queue" role="status">
          Task {queue.index + 1} of {queue.tasks.length}: {queue.tasks[queue.index]} (queued: {queue.tasks.slice(queue.index + 1).join(', ') || 'none'}) — Pause stops the queue.
        </p>
      )}
      {adapters.length > 0 ? (
        <div className="table-wrap">
        <table className="runs" data-testid="task-adapters">
          <thead><tr><th scope="col">fuse</th><th scope="col">task</th><th scope="col">dataset</th><th scope="col">bottleneck</th><th scope="col">steps</th><th scope="col">dev accuracy</th><th scope="col" /></tr></thead>
          <tbody>
            {adapters.map((a) => (
              <tr key={a.name} data-testid={`task-adapter-${a.name}`}>
                <td><input type="checkbox" aria-label={`fuse ${a.name}`} checked={selected.includes(a.name)} onChange={() => compose.toggleSelected(a.name)} data-testid={`fuse-${a.name}`} /></td>
                <th scope="row">{a.name}</th>
                <td title={a.dataset.classes.join(', ')}>{a.dataset.name} ({a.dataset.classes.length} classes)</td>
                <td>{a.bottleneck}</td>
                <td>{a.steps}</td>
                <td>{pct(a.devAccuracy)}</td>
                <td><button type="button" disabled={!!busy} onClick={() => void compose.deleteTaskAdapter(a.name)} aria-label={`delete task adapter ${a.name}`}>Delete</button></td>
              </tr>
            ))}
          </tbody>
        </table>
        </div>
      ) : <p className="hint">No task adapters saved yet.</p>}
    </>
  );
}

function FusionStage({ run }: { run: Run | undefined }) {
  const { adapters, selected, busy, queue } = compose.useCompose();
  const dataset = useStore((s) => s.dataset);
  const isFusion = run?.config.method.kind === 'fusion';
  const fusedTasks = isFusion && run.config.method.kind === 'fusion' ? run.config.method.tasks : [];
  const own = isFusion ? adapters.find((a) => fusedTasks.includes(a.name) && a.dataset.id === run.config.dataset) : undefined;
  const best = run ? bestDevAccuracy(run) : null;
  return (
    <>
      <h3>Stage 2 — AdapterFusion</h3>
      <p className="hint">
        The base and the ticked adapters stay frozen; per layer a fusion block attends over the adapters' outputs (query from the layer, keys and values from each adapter, value initialised to the identity)
        and only the fusion and the head train. It runs as a normal run on the loaded dataset{dataset ? ` (${dataset.name})` : ''}, with the training numbers on the left.
      </p>
      <div className="row">
        <button type="button" className="primary" data-testid="fusion-train" disabled={selected.length < 2 || !!busy || !!queue || run?.state === 'training'} onClick={() => void compose.trainFusion()}>
          Train AdapterFusion over {selected.length >= 2 ? selected.join(' + ') : 'the ticked adapters (≥ 2)'}
        </button>
      </div>
      {isFusion && best !== null && (
        <p data-testid="fusion-compare">
          {run.label} over [{fusedTasks.join(', ')}]: best dev accuracy <b>{pct(best)}</b>
          {own ? <> against <b>{pct(own.devAccuracy)}</b> for the single adapter "{own.name}" trained on this dataset.</> : '.'}
        </p>
      )}
    </>
  );
}

function FusionAttention({ run }: { run: Run | undefined }) {
  const views = compose.useCompose((s) => (run ? s.attention[run.id] : undefined));
  const busy = compose.useCompose((s) => s.busy);
  const [text, setText] = useState('the plot was dull but the actors were wonderful');
  const isFusion = run?.config.method.kind === 'fusion' && !run.saved;
  return (
    <>
      <h3>Fusion attention</h3>
      <p className="hint">For each layer, the softmax weight each task's adapter gets (rows sum to 1), averaged over the tokens of the dev split or of one sentence.</p>
      <div className="row">
        <button type="button" data-testid="fusion-attention-dev" disabled={!isFusion || !!busy || run?.state === 'training'} onClick={() => void compose.fusionAttentionDev()}>Average over dev</button>
      </div>
      <form className="row" onSubmit={(e) => { e.preventDefault(); void compose.fusionAttentionSentence(text); }}>
        <label className="field grow"><span>a sentence</span><input value={text} onChange={(e) => setText(e.target.value)} data-testid="fusion-sentence" /></label>
        <button type="submit" disabled={!isFusion || !!busy || run?.state === 'training'} data-testid="fusion-sentence-go">Attention for this sentence</button>
      </form>
      {!isFusion && <p className="hint">Select or train an AdapterFusion run to see it.</p>}
      <div className="heatmaps">
        {views?.dev && <AttentionTable title={`dev split (${views.dev.tokens} tokens)`} view={views.dev} testId="fusion-attention-table" />}
        {views?.sentence && <AttentionTable title={`"${views.sentence.text}" (${views.sentence.tokens} tokens)`} view={views.sentence} testId="fusion-sentence-table" />}
      </div>
    </>
  );
}

function MultitaskTables({ m }: { m: MultitaskResult }) {
  const ns = Array.from({ length: m.layers + 1 }, (_, n) => n);
  const ks = [...new Set(m.timing.map((r) => r.tasks))];
  return (
    <div className="table-wrap">
      <table className="runs" data-testid="multitask-table">
        <caption className="hint">ms per batch of {m.batchSize} × {m.seqLen} tokens: shared lower layers / each task separately (speed-up)</caption>
        <thead><tr><th scope="col">dropped layers n</th>{ks.map((k) => <th scope="col" key={k}>k = {k} task{k > 1 ? 's' : ''}</th>)}</tr></thead>
        <tbody>
          {ns.map((n) => (
            <tr key={n}>
              <th scope="row">{n}</th>
              {ks.map((k) => {
                const r = m.timing.find((x) => x.tasks === k && x.n === n)!;
                const saved = 100 * (1 - r.infer_ms / r.separate_ms);
                return (
                  <td key={k}>
                    {r.infer_ms.toFixed(1)} / {r.separate_ms.toFixed(1)}
                    <br /><span className="hint">{r.speedup.toFixed(2)}× · {Math.abs(saved).toFixed(0)} % {saved >= 0 ? 'less' : 'more'} time</span>
                  </td>
                );
              })}
            </tr>
          ))}
        </tbody>
      </table>
      <table className="runs" data-testid="multitask-accuracy">
        <caption className="hint">dev accuracy of each task with the adapters of the lowest n layers dropped</caption>
        <thead><tr><th scope="col">task</th>{ns.map((n) => <th scope="col" key={n}>n = {n}</th>)}</tr></thead>
        <tbody>
          {m.tasks.map((t) => (
            <tr key={t}>
              <th scope="row">{t}</th>
              {ns.map((n) => <td key={n}>{pct(m.accuracy.find((a) => a.task === t && a.n === n)!.accuracy)}</td>)}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Multitask() {
  const { multitask, adapters, busy, queue } = compose.useCompose();
  const training = useStore((s) => s.runs.some((r) => r.state === 'training'));
  return (
    <>
      <h3>Multi-task AdapterDrop</h3>
      <p className="hint" data-testid="multitask-explain">
        With the adapters of the lowest n layers dropped, those layers compute the same frozen model for every task, so k tasks run them once and only layers n…L−1 and the heads run per task —
        the survey reports 21–42 % faster multi-task inference this way, paid for by the accuracy lost in the dropped layers (second table).
      </p>
      <div className="row">
        <button type="button" data-testid="multitask-measure" disabled={adapters.length === 0 || !!busy || !!queue || training} onClick={() => void compose.measureMultitask()}>
          Measure k = 1…{Math.min(4, Math.max(1, adapters.length))} tasks, n = 0…L
        </button>
      </div>
      {multitask && <MultitaskTables m={multitask} />}
    </>
  );
}

export function ComposePanel() {
  const run = useStore((s) => s.runs.find((r) => r.id === s.currentRunId));
  const ready = useStore((s) => s.gpu.phase === 'ready');
  const { error, note, busy } = compose.useCompose();
  useEffect(() => {
    if (ready) void compose.restoreTaskAdapters();
  }, [ready]);
  return (
    <section className="panel" aria-labelledby="compose-h" data-testid="compose-panel">
      <h2 id="compose-h">Composing tasks: AdapterFusion and multi-task AdapterDrop</h2>
      {busy && <p className="busy" role="status" data-testid="compose-busy">{busy}</p>}
      {error && <p className="bad" role="alert" data-testid="compose-error">✗ {error}</p>}
      {note && <p className="warn">⚠ {note}</p>}
      <TaskAdapters />
      <FusionStage run={run} />
      <FusionAttention run={run} />
      <Multitask />
    </section>
  );
}
