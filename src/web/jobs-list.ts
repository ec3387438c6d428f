/** The jobs, newest first, with their live state: read again every two seconds and after each change. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { type Call, getJson, type Job } from './api.js';
import { percent, time, whole } from './format.js';

const EVERY_MS = 2000;

export function JobsList(props: { call: Call; selected: string | null; refresh: number }) {
  const { call, selected, refresh } = props;
  const [jobs, setJobs] = useState<Job[] | null>(null);
  const [message, setMessage] = useState('');

  useEffect(() => {
    let live = true;
    const load = (): void => {
      getJson<{ jobs: Job[] }>(call, '/v1/jobs?limit=100')
        .then((page) => {
          if (!live) return;
          setJobs(page.jobs);
          setMessage('');
        })
        .catch((err: unknown) => live && setMessage(err instanceof Error ? err.message : String(err)));
    };
    load();
    const timer = setInterval(load, EVERY_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [call, refresh]);

  return html`<section aria-labelledby="jobs-title">
    <h2 id="jobs-title">Jobs</h2>
    ${message !== '' && html`<p class="error" role="alert">${message}</p>`}
    ${jobs !== null && jobs.length === 0 && html`<p class="muted">No job yet.</p>`}
    ${
      jobs !== null &&
      jobs.length > 0 &&
      html`<table id="jobs">
        <thead>
          <tr>
            <th scope="col">job</th>
            <th scope="col">tenant</th>
            <th scope="col">state</th>
            <th scope="col">done</th>
            <th scope="col">failed</th>
            <th scope="col">created</th>
          </tr>
        </thead>
        <tbody>
          ${jobs.map(
            (job) =>
              html`<tr key=${job.id} class=${job.id === selected ? 'selected' : ''}>
                <td>
                  <a
                    href=${`#job=${encodeURIComponent(job.id)}`}
                    aria-current=${job.id === selected ? 'page' : undefined}
                    >${job.id}</a
                  >
                </td>
                <td>${job.tenant}</td>
                <td><span class=${`state state-${job.state}`}>${job.state}</span></td>
                <td>
                  ${whole(job.done)} / ${whole(job.counts.total)} (${percent(job.done, job.counts.total)} %)
                </td>
                <td>${whole(job.counts.failed)}</td>
                <td>${time(job.createdAt)}</td>
              </tr>`,
          )}
        </tbody>
      </table>`
    }
  </section>`;
}
