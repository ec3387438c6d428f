/** A job's failed sessions: the first few listed, and all of them as a JSON Lines download. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import type { Call } from './api.js';

/** Rows listed on the page; the download has them all. */
const SHOWN = 20;

interface Outcome {
  sessionId: string;
  error: { code: string; message: string } | null;
}

const path = (id: string): string => `/v1/jobs/${encodeURIComponent(id)}/outcomes?outcome=failed`;

export function FailedSessions({ call, id, failed }: { call: Call; id: string; failed: number }) {
  const [rows, setRows] = useState<Outcome[]>([]);
  const [message, setMessage] = useState('');

  useEffect(() => {
    const stop = new AbortController();
    void call(path(id), { signal: stop.signal })
      .then((res) => res.text())
      .then((text) =>
        setRows(
          text
            .split('\n')
            .filter((line) => line !== '')
            .slice(0, SHOWN)
            .map((line) => JSON.parse(line) as Outcome),
        ),
      )
      .catch((err: unknown) => {
        if (!stop.signal.aborted) setMessage(String(err));
      });
    return () => stop.abort();
    // Listed again as more fail: the count is the dependency.
  }, [call, id, Math.min(failed, SHOWN)]);

  async function download(): Promise<void> {
    try {
      const blob = await (await call(path(id))).blob();
      const link = document.createElement('a');
      link.href = URL.createObjectURL(blob);
      link.download = `${id}-failed.jsonl`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (err) {
      setMessage(String(err));
    }
  }

  return html`<div class="failed">
    <h3>Failed sessions</h3>
    <table id="failed-sessions">
      <caption class="muted">
        ${failed > rows.length ? `the first ${rows.length} of ${failed}` : `all ${failed}`}
      </caption>
      <thead>
        <tr>
          <th scope="col">session</th>
          <th scope="col">error</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (row) =>
            html`<tr>
              <td>${row.sessionId}</td>
              <td>${row.error === null ? '' : `${row.error.code}: ${row.error.message}`}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <p>
      <button type="button" onClick=${() => void download()}>
        Download the failed sessions (JSON Lines)
      </button>
    </p>
    ${message !== '' && html`<p class="error" role="alert">${message}</p>`}
  </div>`;
}
