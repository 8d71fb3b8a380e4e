// The method-specific views: AdaMix's routing (which expert each layer picked, live), its
// consistency term and merged-vs-sampled dev accuracy; AdapterDrop's accuracy and time per batch
// for every number of dropped layers; and the try-it box.
import { useState } from 'react';
import { Line, LineChart, ResponsiveContainer, XAxis, YAxis, CartesianGrid, Tooltip } from 'recharts';
import { useStore, runStyle, msPerStep, type Run } from '../store';
import * as ctl from '../controller';
import { thin } from './Charts';

function useCurrentRun(): Run | undefined {
  return useStore((s) => s.runs.find((r) => r.id === s.currentRunId));
}

function Heatmap({ title, counts }: { title: string; counts: number[][] }) {
  const max = Math.max(1, ...counts.flat());
  return (
    <table className="heatmap" aria-label={title}>
      <caption>{title}</caption>
      <thead><tr><th scope="col">layer</th>{counts[0].map((_, e) => <th scope="col" key={e}>expert {e}</th>)}</tr></thead>
      <tbody>
        {counts.map((row, l) => {
          const total = row.reduce((a, b) => a + b, 0);
          return (
            <tr key={l}>
              <th scope="row">{l}</th>
              {row.map((c, e) => (
                <td key={e} style={{ background: `rgba(36, 88, 211, ${(0.08 + 0.8 * (c / max)).toFixed(3)})`, color: c / max > 0.55 ? '#fff' : undefined }}>
                  {c}<span className="pct">{total ? ` ${((100 * c) / total).toFixed(0)}%` : ''}</span>
                </td>
              ))}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

export function AdamixPanel() {
  const run = useCurrentRun();
  const busy = useStore((s) => s.busy !== null);
  const isAdamix = run?.config.method.kind === 'adamix' || run?.config.method.kind === 'adamix_lora';
  return (
    <section className="panel" aria-labelledby="adamix-h" data-testid="adamix-panel">
      <h2 id="adamix-h">AdaMix routing</h2>
      {!isAdamix ? (
        <p className="hint">Select or train an AdaMix run to see how often each expert was picked per layer, the consistency term, and merged vs sampled-route accuracy.</p>
      ) : (
        <>
          <p className="hint">
            Each forward pass picks one expert per layer uniformly at random (no learned router). Counts near-equal across experts show the routing is uniform as intended;
            the consistency term (symmetric KL between two routed passes) shrinks as the experts learn to agree, which is what makes averaging them safe.
          </p>
          {run.routing ? (
            <div className="heatmaps" data-testid="adamix-counts">
              <Heatmap title={`down-projection experts (${run.routing.passes} routed passes)`} counts={run.routing.down} />
              {run.routing.upExperts > 1 ? <Heatmap title="up-projection experts" counts={run.routing.up} /> : <p className="hint">The up-projection is shared by all experts (one W_up).</p>}
            </div>
          ) : <p className="hint">No passes yet: press Train.</p>}
          <figure className="chart small-chart">
            <figcaption><span>Consistency term over training</span></figcaption>
            <div className="chart-box">
              <ResponsiveContainer width="100%" height="100%">
                <LineChart data={thin(run.steps)} margin={{ top: 6, right: 12, bottom: 4, left: 0 }}>
                  <CartesianGrid stroke="#e6e8ee" />
                  <XAxis type="number" dataKey="step" domain={['dataMin', 'dataMax']} tick={{ fontSize: 11 }} />
                  <YAxis tick={{ fontSize: 11 }} width={64} tickFormatter={(v: number) => v.toPrecision(2)} />
                  <Tooltip formatter={(v) => (typeof v === 'number' ? v.toPrecision(4) : String(v))} />
                  <Line dataKey="consistency" name="consistency (KL)" stroke={runStyle(run).color} strokeDasharray={runStyle(run).dash} dot={false} isAnimationActive={false} />
                </LineChart>
              </ResponsiveContainer>
            </div>
          </figure>
          <div className="row">
            <button type="button" data-testid="adamix-eval" disabled={busy || run.state === 'training' || run.saved} onClick={() => void ctl.evaluateAdamixRoutes()}>Merged vs sampled routes on dev</button>
          </div>
          {run.routeEval && (
            <p data-testid="adamix-route-eval">
              Merged (experts averaged): <b>{(100 * run.routeEval.merged).toFixed(1)} %</b> dev accuracy; single random routes:{' '}
              {run.routeEval.routes.map((a) => `${(100 * a).toFixed(1)} %`).join(', ')}. The merged model costs one adapter at inference; the AdaMix paper finds it matches or beats single routes once the experts agree (short runs may not be there yet).
            </p>
          )}
        </>
      )}
    </section>
  );
}

export function AdapterDropPanel() {
  const run = useCurrentRun();
  const runs = useStore((s) => s.runs);
  const busy = useStore((s) => s.busy !== null);
  const rows = run?.adapterDrop;
  const base = rows?.[0];
  // training speed-up: runs of the same method and data that differ only in the dropped layers
  const siblings = run ? runs.filter((r) => r.config.method.kind === run.config.method.kind && r.config.dataset === run.config.dataset && r.steps.length > 0) : [];
  const undropped = siblings.find((r) => r.config.adapterDrop.mode === 'none' || (r.config.adapterDrop.mode === 'specialized' && r.config.adapterDrop.n === 0));
  return (
    <section className="panel" aria-labelledby="drop-h" data-testid="adapterdrop-panel">
      <h2 id="drop-h">AdapterDrop</h2>
      <p className="hint">
        Dropping the adapters of the lowest n layers means those layers compute exactly the frozen model, so several tasks can share them and the backward pass stops above them.
        The table evaluates the current run with n = 0…L dropped at inference time.
      </p>
      <div className="row">
        <button type="button" data-testid="adapterdrop-measure" disabled={!run || run.saved || busy || run.state === 'training'} onClick={() => void ctl.measureAdapterDrop()}>Measure n = 0…L on dev</button>
      </div>
      {rows && base && (
        <table className="runs" data-testid="adapterdrop-table">
          <thead><tr><th scope="col">dropped layers n</th><th scope="col">dev accuracy</th><th scope="col">ms / batch</th><th scope="col">inference speed-up</th></tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.n}>
                <th scope="row">{r.n}</th>
                <td>{(100 * r.accuracy).toFixed(1)} %</td>
                <td>{r.msPerBatch.toFixed(1)}</td>
                <td>{(base.msPerBatch / r.msPerBatch).toFixed(2)}×</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {rows && (
        <p className="hint">
          Dev accuracy: how much of the fine-tuning survives when the lowest n layers run without their modules (n = L is the frozen encoder with the trained head).
          Time per batch: one model alone computes every layer either way, so the gain shows when tasks share the frozen lower layers; on a software GPU the numbers are noisy.
        </p>
      )}
      <h3>Training speed-up</h3>
      <p className="hint">
        Training with the lowest n layers' modules dropped records no backward pass below layer n, so each step does less work.
        The button times three training steps (after one warm-up step) of a throwaway copy of the current run for every n = 0…L−1; the run itself is not changed.
      </p>
      <div className="row">
        <button type="button" data-testid="adapterdrop-train-measure" disabled={!run || run.saved || busy || run.state === 'training'} onClick={() => void ctl.measureAdapterDropTraining()}>Time training for n = 0…L−1</button>
      </div>
      {run?.dropTraining && run.dropTraining.length > 0 && (
        <>
          <table className="runs" data-testid="adapterdrop-train-table">
            <thead><tr><th scope="col">dropped layers n</th><th scope="col">ms / training step</th><th scope="col">training speed-up</th></tr></thead>
            <tbody>
              {run.dropTraining.map((r) => (
                <tr key={r.n}>
                  <th scope="row">{r.n}</th>
                  <td>{r.msPerStep.toFixed(1)}</td>
                  <td>{(run.dropTraining![0].msPerStep / r.msPerStep).toFixed(2)}×</td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="hint">
            Training speed-up is ms/step at n = 0 divided by ms/step at n: it grows with n because the backward pass stops above the dropped layers. A model this small
            spends a larger share of each step outside the encoder layers (embeddings, head, optimizer) than BERT-base does, so the gain is smaller here, and on a software GPU the numbers are noisy.
          </p>
        </>
      )}
      <h4>From the runs in the table</h4>
      {siblings.length > 1 && undropped ? (
        <ul data-testid="adapterdrop-train">
          {siblings.filter((r) => r !== undropped).map((r) => {
            const a = msPerStep(undropped), b = msPerStep(r);
            return <li key={r.id}>{r.label}: {b?.toFixed(0)} ms/step against {a?.toFixed(0)} without dropping — {a && b ? (a / b).toFixed(2) : '?'}× faster, because no gradient flows below the lowest module.</li>;
          })}
        </ul>
      ) : (
        <p className="hint">Train the same method once with AdapterDrop none and once with specialised n &gt; 0: the ms/step ratio is the training speed-up, since the backward pass never enters the dropped layers.</p>
      )}
    </section>
  );
}

export function TryIt() {
  const [text, setText] = useState('the plot was dull but the actors were wonderful');
  const prediction = useStore((s) => s.prediction);
  const run = useCurrentRun();
  return (
    <section className="panel" aria-labelledby="try-h">
      <h2 id="try-h">Try it</h2>
      <form className="row" onSubmit={(e) => { e.preventDefault(); void ctl.predict(text); }}>
        <label className="field grow"><span>A sentence for the current model</span><input value={text} onChange={(e) => setText(e.target.value)} data-testid="try-input" /></label>
        <button type="submit" disabled={!run || run.saved || run.state === 'training'} data-testid="try-go">Classify</button>
      </form>
      {prediction && (
        <div data-testid="try-result">
          <p className="tokens" aria-label="WordPiece tokens">{prediction.tokens.map((t, i) => <span key={i} className="token">{t}</span>)}</p>
          <ul className="probs">
            {prediction.classes.map((c, i) => (
              <li key={c}>
                <span className="prob-label">{c}</span>
                <span className="prob-bar"><span style={{ width: `${(100 * prediction.probs[i]).toFixed(1)}%` }} /></span>
                <span>{(100 * prediction.probs[i]).toFixed(1)} %</span>
              </li>
            ))}
          </ul>
        </div>
      )}
    </section>
  );
}
