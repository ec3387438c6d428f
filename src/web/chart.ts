/**
 * A job's throughput and latency percentiles over time, drawn with uPlot: resets per second on the left
 * axis, milliseconds on the right. The numbers it draws are also shown as text beside it.
 */
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

/** Columns: time (s since the epoch), sessions finished in the last second, p50, p95, p99 (ms). */
export type Series = [number[], number[], number[], number[], number[]];

export const emptySeries = (): Series => [[], [], [], [], []];

const HEIGHT = 240;

function options(width: number): uPlot.Options {
  return {
    width,
    height: HEIGHT,
    scales: { x: { time: true }, rate: { auto: true }, ms: { auto: true } },
    series: [
      {},
      { label: 'sessions/s', scale: 'rate', stroke: '#1f4e99', width: 2 },
      { label: 'p50 ms', scale: 'ms', stroke: '#2d6a2d', width: 1.5 },
      { label: 'p95 ms', scale: 'ms', stroke: '#8a5a00', width: 1.5, dash: [6, 3] },
      { label: 'p99 ms', scale: 'ms', stroke: '#a00000', width: 1.5, dash: [2, 3] },
    ],
    axes: [
      {},
      { scale: 'rate', label: 'sessions finished / s' },
      { scale: 'ms', side: 1, label: 'latency, ms', grid: { show: false } },
    ],
    legend: { live: false },
  };
}

export function Chart({ data, label }: { data: Series; label: string }) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);

  useEffect(() => {
    const element = host.current!;
    const chart = new uPlot(options(Math.max(320, element.clientWidth)), data, element);
    plot.current = chart;
    const resize = new ResizeObserver(() =>
      chart.setSize({ width: Math.max(320, element.clientWidth), height: HEIGHT }),
    );
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // Made once; new points go through setData below.
  }, []);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return html`<figure class="chart">
    <div ref=${host} role="img" aria-label=${label} data-points=${data[0].length}></div>
    <figcaption>${label}</figcaption>
  </figure>`;
}
