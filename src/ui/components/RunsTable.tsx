// The table of runs: method, trainable parameters (count and %), best dev accuracy, wall time,
// ms/step; the current run is the one the panels, try-it box and exports act on.
import { useStore, runStyle, bestDevAccuracy, msPerStep } from '../store';
import * as ctl from '../controller';

function fmtCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : String(n);
}

export function RunsTable() {
  const runs = useStore((s) => s.runs);
  const current = useStore((s) => s.currentRunId);
  if (runs.length === 0) return null;
  return (
    <section className="panel" aria-labelledby="runs-h">
      <h2 id="runs-h">Runs</h2>
      <div className="table-wrap">
        <table className="runs" data-testid="runs-table">
          <thead>
            <tr><th scope="col">run</th><th scope="col">data · model</th><th scope="col">trainable</th><th scope="col">%</th><th scope="col">best dev acc.</th><th scope="col">steps</th><th scope="col">wall time</th><th scope="col">ms/step</th><th scope="col">state</th><th scope="col"><span className="sr-only">actions</span></th></tr>
          </thead>
          <tbody>
            {runs.map((r) => {
              const st = runStyle(r);
              const best = bestDevAccuracy(r);
              const ms = msPerStep(r);
              return (
                <tr key={r.id} aria-current={r.id === current || undefined} className={r.id === current ? 'current' : undefined}>
                  <th scope="row"><span style={{ color: st.color }} aria-hidden="true">{st.marker}</span> {r.label}</th>
                  <td className="muted">{r.datasetName} · {r.modelName}</td>
                  <td>{fmtCount(r.trainable)}</td>
                  <td>{r.trainablePct < 1 ? r.trainablePct.toFixed(2) : r.trainablePct.toFixed(1)}</td>
                  <td>{best === null ? '—' : `${(100 * best).toFixed(1)} %`}</td>
                  <td>{r.steps.at(-1)?.step ?? 0}/{r.config.steps}</td>
                  <td>{(r.wallMs / 1000).toFixed(1)} s</td>
                  <td>{ms === null ? '—' : ms.toFixed(0)}</td>
                  <td>{r.state}</td>
                  <td className="actions">
                    {!r.saved && r.id !== current && <button type="button" className="small" onClick={() => ctl.selectRun(r.id)}>select</button>}
                    {r.saved && <button type="button" className="small" onClick={() => void ctl.deleteRun(r.id)} aria-label={`delete saved run ${r.label}`}>delete</button>}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      <p className="hint">Runs are saved in this browser (IndexedDB) when they pause or finish, and come back after a reload as curves; tick them in the legend to overlay them.</p>
    </section>
  );
}

export function ExportPanel() {
  const run = useStore((s) => s.runs.find((r) => r.id === s.currentRunId));
  const kind = run?.config.method.kind;
  const live = !!run && !run.saved;
  const adapter = kind === 'houlsby' || kind === 'pfeiffer' || kind === 'adamix';
  return (
    <section className="panel" aria-labelledby="export-h">
      <h2 id="export-h">Export</h2>
      <div className="row wrap">
        <button type="button" disabled={!live || !adapter} onClick={() => void ctl.exportRun('adapter')}>Adapter{kind === 'adamix' ? ' (experts merged)' : ''}</button>
        {kind === 'adamix' && <button type="button" disabled={!live} onClick={() => void ctl.exportRun('adapter-experts')}>Adapter (all experts)</button>}
        <button type="button" disabled={!live || kind !== 'lora'} onClick={() => void ctl.exportRun('lora')}>LoRA (PEFT layout)</button>
        <button type="button" disabled={!live || adapter} onClick={() => void ctl.exportRun('full')}>Full model (HF){kind === 'lora' ? ', LoRA merged' : ''}</button>
        <button type="button" onClick={ctl.exportMetricsCsv}>Metrics CSV</button>
      </div>
      <p className="hint">Adapters: adapter_config.json + adapter_model.safetensors (README, “Adapter export format”). LoRA loads with PEFT’s PeftModel.from_pretrained; the full model with BertForSequenceClassification.from_pretrained. Each chart has its own PNG button.</p>
    </section>
  );
}
