// Live curves of every visible run on shared axes: one colour, dash pattern and marker per run
// (colour is never the only signal), toggled from the legend. Series are thinned to a few hundred
// points so redraws stay cheap on the main thread.
import { memo, useDeferredValue, useRef } from 'react';
import { CartesianGrid, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { useStore, runStyle, type Run } from '../store';
import * as ctl from '../controller';

const MAX_POINTS = 300;
const thinned = new WeakMap<object[], object[]>();

/** At most ~MAX_POINTS points of a series for drawing, cached per series array (a run's steps array changes only when it grows). */
export function thin<T extends object>(points: T[]): T[] {
  if (points.length <= MAX_POINTS) return points;
  let out = thinned.get(points);
  if (!out) {
    const every = Math.ceil(points.length / MAX_POINTS);
    out = points.filter((_, i) => i % every === 0 || i === points.length - 1);
    thinned.set(points, out);
  }
  return out as T[];
}

export function RunLegend() {
  const runs = useStore((s) => s.runs);
  if (runs.length === 0) return null;
  return (
    <ul className="legend" aria-label="runs shown in the charts" data-testid="run-legend">
      {runs.map((r) => {
        const st = runStyle(r);
        return (
          <li key={r.id}>
            <label className="check">
              <input type="checkbox" checked={r.visible} onChange={() => ctl.toggleRunVisible(r.id)} />
              <svg width="28" height="10" aria-hidden="true"><line x1="0" y1="5" x2="28" y2="5" stroke={st.color} strokeWidth="2.5" strokeDasharray={st.dash} /></svg>
              <span style={{ color: st.color }} aria-hidden="true">{st.marker}</span> {r.label}
            </label>
          </li>
        );
      })}
    </ul>
  );
}

type Series = { run: Run; key: string; data: object[]; raw?: boolean };

interface ChartProps { title: string; yLabel: string; series: Series[]; testId: string; domain?: [number, number]; fileName: string; /** changes exactly when what the chart draws changes */ version: string }

/** Redrawn only when its own data changed: a training step redraws the step charts, not the dev charts (recharts redraws cost the main thread most). */
const MultiRunChart = memo(MultiRunChartView, (a, b) => a.version === b.version);

function MultiRunChartView({ title, yLabel, series, testId, domain, fileName }: ChartProps) {
  const ref = useRef<HTMLDivElement>(null);
  const points = series.reduce((a, s) => a + s.data.length, 0);
  return (
    <figure className="chart" data-testid={testId} data-points={points}>
      <figcaption>
        <span>{title}</span>
        <button type="button" className="small" onClick={() => void ctl.exportChartPng(ref.current?.querySelector('svg.recharts-surface') ?? null, fileName)} aria-label={`download the ${title} chart as PNG`}>PNG</button>
      </figcaption>
      <div ref={ref} className="chart-box">
        {points === 0 ? <p className="empty">No points yet.</p> : (
          <ResponsiveContainer width="100%" height="100%">
            <LineChart margin={{ top: 6, right: 12, bottom: 4, left: 0 }}>
              <CartesianGrid stroke="#e6e8ee" />
              <XAxis type="number" dataKey="step" domain={['dataMin', 'dataMax']} allowDecimals={false} tick={{ fontSize: 11 }} label={{ value: 'step', position: 'insideBottomRight', offset: -2, fontSize: 11 }} />
              <YAxis domain={domain ?? ['auto', 'auto']} tick={{ fontSize: 11 }} width={44} label={{ value: yLabel, angle: -90, position: 'insideLeft', fontSize: 11 }} />
              <Tooltip formatter={(v) => (typeof v === 'number' ? v.toPrecision(4) : String(v))} labelFormatter={(l) => `step ${l}`} />
              {series.map((s) => {
                const st = runStyle(s.run);
                return (
                  <Line key={`${s.run.id}-${s.key}-${s.raw ? 'raw' : ''}`} data={s.data} dataKey={s.key} name={`${s.run.label}${s.raw ? ' (raw)' : ''}`}
                    stroke={st.color} strokeOpacity={s.raw ? 0.3 : 1} strokeWidth={s.raw ? 1 : 2.2} strokeDasharray={s.raw ? undefined : st.dash}
                    dot={s.data.length < 40 && !s.raw ? { r: 2.5, fill: st.color } : false} isAnimationActive={false} />
                );
              })}
            </LineChart>
          </ResponsiveContainer>
        )}
      </div>
    </figure>
  );
}

export function Charts() {
  // a low-priority copy of the runs: React renders the four charts in slices and yields to input
  // between them instead of blocking the main thread for the whole redraw
  const runs = useDeferredValue(useStore((s) => s.runs));
  return <ChartsView runs={runs} />;
}

const ChartsView = memo(function ChartsView({ runs: all }: { runs: Run[] }) {
  const runs = all.filter((r) => r.visible);
  const shown = runs.map((r) => `${r.id}:${r.styleIndex}:${r.label}`).join('|');
  const stepsVersion = `${shown}#${runs.map((r) => r.steps.length).join(',')}`;
  const evalsVersion = `${shown}#${runs.map((r) => r.evals.length).join(',')}`;
  const steps = runs.map((r) => ({ run: r, data: thin(r.steps) }));
  return (
    <section className="panel" aria-labelledby="charts-h">
      <h2 id="charts-h">Training curves</h2>
      <RunLegend />
      <div className="charts">
        <MultiRunChart title="Training loss (faint: raw, bold: smoothed)" yLabel="loss" testId="loss-chart" fileName="training-loss" version={stepsVersion}
          series={steps.flatMap(({ run, data }) => [{ run, key: 'loss', data, raw: true }, { run, key: 'smooth', data }])} />
        <MultiRunChart title="Dev accuracy" yLabel="accuracy" testId="acc-chart" fileName="dev-accuracy" version={evalsVersion} domain={[0, 1]}
          series={runs.map((run) => ({ run, key: 'accuracy', data: run.evals }))} />
        <MultiRunChart title="Dev loss" yLabel="loss" testId="devloss-chart" fileName="dev-loss" version={evalsVersion}
          series={runs.map((run) => ({ run, key: 'loss', data: run.evals }))} />
        <MultiRunChart title="Step time (ms)" yLabel="ms / step" testId="speed-chart" fileName="step-time" version={stepsVersion}
          series={steps.map(({ run, data }) => ({ run, key: 'stepMs', data }))} />
      </div>
      <SpeedLine />
    </section>
  );
});

function SpeedLine() {
  const run = useStore((s) => s.runs.find((r) => r.id === s.currentRunId));
  const last = run?.steps.at(-1);
  if (!run || !last) return null;
  return (
    <p className="hint" data-testid="speed-line">
      {run.label}: last loss {last.loss.toFixed(4)} · {last.stepMs.toFixed(0)} ms/step · {last.tokensPerS.toFixed(0)} tokens/s
    </p>
  );
}
