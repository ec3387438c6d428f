/** Reading Prometheus exposition text in tests. */
import * as assert from 'node:assert/strict';

/** Parses Prometheus exposition text into `name{labels}` → value; fails on a line that is not the format. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(match, `not exposition format: ${line}`);
    out.set(match[1]!, Number(match[2]));
  }
  return out;
}

/** The sum of every series of `name`, whatever its labels. */
export function metricTotal(metrics: Map<string, number>, name: string): number {
  let total = 0;
  for (const [key, value] of metrics) if (key === name || key.startsWith(`${name}{`)) total += value;
  return total;
}
