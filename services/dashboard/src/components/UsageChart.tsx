import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

export interface Sample {
  /** Seconds since the epoch. */
  t: number;
  value: number;
}

/**
 * A time series drawn with uPlot (about 15 KB gzipped). The figure's caption says how many samples
 * it holds and the last value, for everyone who does not see the chart.
 */
export function UsageChart({
  title,
  unit,
  samples,
  format,
}: {
  title: string;
  unit: string;
  samples: readonly Sample[];
  format: (value: number) => string;
}) {
  const holder = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    if (!holder.current) return;
    const width = Math.max(280, holder.current.clientWidth || 480);
    plot.current = new uPlot(
      {
        width,
        height: 180,
        legend: { show: false },
        scales: { x: { time: true }, y: { range: (_u, min, max) => [0, Math.max(max * 1.2, min + 1e-9, 0.001)] } },
        axes: [{}, { values: (_u, ticks) => ticks.map((tick) => format(tick)), size: 70 }],
        series: [{}, { label: title, stroke: '#1f5fa8', width: 2, fill: 'rgba(31,95,168,0.12)' }],
      },
      [[], []],
      holder.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
  }, [title, format]);
  useEffect(() => {
    plot.current?.setData([samples.map((s) => s.t), samples.map((s) => s.value)]);
  }, [samples]);
  const last = samples.at(-1);
  return (
    <figure class="chart" data-points={samples.length}>
      <div ref={holder} aria-hidden="true" />
      <figcaption>
        {title} ({unit}): <span class="points">{samples.length} samples</span>
        {last ? `, last ${format(last.value)} at ${new Date(last.t * 1000).toLocaleTimeString()}` : ''}
      </figcaption>
    </figure>
  );
}
