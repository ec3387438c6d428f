/**
 * One job, followed live over its Server-Sent Events: progress, ETA, counts, rate and latency over time,
 * the flow controller, outcomes by error code, the failed sessions with a download, and cancel.
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type Call, FINISHED, type Job, serverEvents } from './api.js';
import { Chart, emptySeries, type Series } from './chart.js';
import { FailedSessions } from './failed-sessions.js';
import { duration, oneDecimal, percent, time, whole } from './format.js';

/** Points the plot keeps (at one status every half second: five minutes). */
const POINTS = 600;

function append(series: Series, job: Job): Series {
  if (job.state !== 'running' || job.recent === null) return series;
  const point = [
    Date.now() / 1000,
    job.recent.sessions,
    job.recent.latencyMs.p50,
    job.recent.latencyMs.p95,
    job.recent.latencyMs.p99,
  ];
  return series.map((column, i) => [...column.slice(-(POINTS - 1)), point[i]!]) as Series;
}

export function JobView(props: { call: Call; id: string; canWrite: boolean; onChange: () => void }) {
  const { call, id, canWrite, onChange } = props;
  const [job, setJob] = useState<Job | null>(null);
  const [series, setSeries] = useState<Series>(emptySeries);
  const [message, setMessage] = useState('');
  const heading = useRef<HTMLHeadingElement>(null);

  // A job opened from the list or just started: the keyboard and a screen reader go to it.
  useEffect(() => heading.current?.focus(), [id, job === null]);

  useEffect(() => {
    setJob(null);
    setSeries(emptySeries());
    setMessage('');
    const stop = new AbortController();
    void (async () => {
      try {
        const res = await call(`/v1/jobs/${encodeURIComponent(id)}/events`, { signal: stop.signal });
        for await (const { event, data } of serverEvents(res)) {
          const next = JSON.parse(data) as Job;
          setJob(next);
          setSeries((s) => append(s, next));
          if (event === 'done') onChange();
        }
      } catch (err) {
        if (!stop.signal.aborted) setMessage(err instanceof Error ? err.message : String(err));
      }
    })();
    return () => stop.abort();
  }, [call, id]);

  async function cancel(): Promise<void> {
    try {
      await call(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
      onChange();
    } catch (err) {
      setMessage(err instanceof ApiError ? err.message : String(err));
    }
  }

  if (job === null)
    return html`<section aria-labelledby="job-title">
      <h2 id="job-title" tabindex="-1" ref=${heading}>Job ${id}</h2>
      <p role="status">${message === '' ? 'Loading…' : ''}</p>
      ${message !== '' && html`<p class="error" role="alert">${message}</p>`}
    </section>`;

  const { counts } = job;
  const pct = percent(job.done, counts.total);
  const finished = FINISHED.has(job.state);
  const fc = job.flowControl;
  const codes = Object.entries(job.errors).sort((a, b) => b[1] - a[1]);
  return html`<section aria-labelledby="job-title" class="job">
    <h2 id="job-title" tabindex="-1" ref=${heading}>
      Job ${job.id}: <span class=${`state state-${job.state}`}>${job.state}</span>
    </h2>
    <p class="muted">
      tenant ${job.tenant}, bot ${job.bot}${job.dryRun ? ', dry run' : ''} · created ${time(job.createdAt)}
      ${job.reason === null ? '' : ` · reason: ${job.reason}`}
    </p>
    <progress
      id="progress"
      max=${Math.max(1, counts.total)}
      value=${job.done}
      aria-label="progress"
    ></progress>
    <p id="summary" aria-live="polite">
      <strong id="percent">${pct} %</strong> · ${whole(job.done)} of ${whole(counts.total)} done · ${' '}<span
        id="eta"
        >ETA ${finished ? '—' : duration(job.etaSec)}</span
      >
    </p>
    <dl class="figures">
      <div>
        <dt>reset</dt>
        <dd id="count-reset">${whole(counts.reset)}</dd>
      </div>
      <div>
        <dt>verified</dt>
        <dd id="count-verified">${whole(counts.verified)}</dd>
      </div>
      <div>
        <dt>failed</dt>
        <dd id="count-failed">${whole(counts.failed)}</dd>
      </div>
      <div>
        <dt>skipped</dt>
        <dd id="count-skipped">${whole(counts.skipped)}</dd>
      </div>
      <div>
        <dt>resets/s</dt>
        <dd id="rate">${oneDecimal(job.rate)}</dd>
      </div>
      <div>
        <dt>latency p50</dt>
        <dd id="p50">${oneDecimal(job.latencyMs.p50)} ms</dd>
      </div>
      <div>
        <dt>p95</dt>
        <dd id="p95">${oneDecimal(job.latencyMs.p95)} ms</dd>
      </div>
      <div>
        <dt>p99</dt>
        <dd id="p99">${oneDecimal(job.latencyMs.p99)} ms</dd>
      </div>
    </dl>
    <${Chart}
      data=${series}
      label=${`Sessions finished a second, and their latency p50, p95, p99 (ms), over the last second, of job ${job.id}: one point every half second while it runs`}
    />
    <h3>Flow control</h3>
    ${
      fc === null
        ? html`<p class="muted">Shown while the job runs.</p>`
        : html`<dl class="figures" id="flow-control">
            <div>
              <dt>mode</dt>
              <dd id="fc-mode">${fc.mode}</dd>
            </div>
            <div>
              <dt>rate</dt>
              <dd id="fc-rate">${fc.rate == null ? '—' : `${oneDecimal(fc.rate)}/s`}</dd>
            </div>
            <div>
              <dt>ceiling</dt>
              <dd>${fc.ceiling == null ? 'none' : `${oneDecimal(fc.ceiling)}/s`}</dd>
            </div>
            <div>
              <dt>refused</dt>
              <dd>${whole(fc.refused ?? 0)}</dd>
            </div>
            <div>
              <dt>cuts</dt>
              <dd>${whole(fc.cuts ?? 0)}</dd>
            </div>
            <div>
              <dt>in-flight limit</dt>
              <dd id="fc-in-flight">${whole(fc.inFlightLimit)}</dd>
            </div>
          </dl>`
    }
    <h3>Outcomes by error code</h3>
    ${
      codes.length === 0
        ? html`<p id="no-errors">No failed session${finished ? '' : ' so far'}.</p>`
        : html`<table id="errors">
            <thead>
              <tr>
                <th scope="col">error code</th>
                <th scope="col">sessions</th>
              </tr>
            </thead>
            <tbody>
              ${codes.map(
                ([code, n]) =>
                  html`<tr>
                    <td><code>${code}</code></td>
                    <td>${whole(n)}</td>
                  </tr>`,
              )}
            </tbody>
          </table>`
    }
    ${job.error !== null && html`<p class="error">The job stopped: ${job.error.code}: ${job.error.message}</p>`}
    ${counts.failed > 0 && html`<${FailedSessions} call=${call} id=${job.id} failed=${counts.failed} />`}
    ${
      canWrite &&
      !finished &&
      html`<p>
        <button type="button" onClick=${() => void cancel()} disabled=${job.cancelRequested}>
          ${job.cancelRequested ? 'Cancelling…' : 'Cancel job'}
        </button>
      </p>`
    }
    ${message !== '' && html`<p class="error" role="alert">${message}</p>`}
  </section>`;
}
