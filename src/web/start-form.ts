/**
 * Start a job: session ids pasted or a file, a preview (the count, what each reset clears, the first
 * directives; nothing sent), then an explicit confirmation that sends the previewed request. Changing
 * anything drops the preview, so what is confirmed is what was previewed.
 */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { type Call, getJson, type Job, type KeyInfo, type Preview } from './api.js';
import { PreviewView } from './preview-view.js';
import { whole } from './format.js';

const PLAN_OPTIONS = [
  ['keepHistory', 'Keep the history'],
  ['keepVariables', 'Keep the variables'],
  ['keepNlu', 'Keep the NLU context'],
  ['flowOnly', 'Reset the flow position only'],
] as const;
type PlanKey = (typeof PLAN_OPTIONS)[number][0];

interface Draft {
  tenant: string;
  bot: string;
  ids: string;
  file: File | null;
  reason: string;
  plan: Record<PlanKey, boolean>;
}

function uploadType(name: string): string {
  if (/\.csv$/i.test(name)) return 'text/csv';
  if (/\.(jsonl|ndjson)$/i.test(name)) return 'application/x-ndjson';
  return 'text/plain';
}

/** The request for `path` (`/v1/jobs` or its preview): JSON with the ids, or the file as an upload. */
function request(
  draft: Draft,
  path: string,
  query: Record<string, string>,
  init: RequestInit,
): [string, RequestInit] {
  const fields: Record<string, string> = { tenant: draft.tenant };
  if (draft.bot !== '') fields['bot'] = draft.bot;
  if (draft.reason !== '') fields['reason'] = draft.reason;
  const headers = new Headers(init.headers);
  const plan = Object.fromEntries(Object.entries(draft.plan).filter(([, on]) => on));
  if (draft.file !== null) {
    headers.set('content-type', uploadType(draft.file.name));
    // An upload's plan flags go in the query string, each on its own.
    const flags = Object.fromEntries(Object.keys(plan).map((flag) => [flag, 'true']));
    const search = new URLSearchParams({ ...fields, ...flags, ...query });
    return [`${path}?${search}`, { ...init, method: 'POST', headers, body: draft.file }];
  }
  headers.set('content-type', 'application/json');
  const sessions = draft.ids.split(/\r?\n/).filter((line) => line !== '');
  const search = new URLSearchParams(query).toString();
  const body = JSON.stringify({ ...fields, sessions, plan });
  return [`${path}${search === '' ? '' : `?${search}`}`, { ...init, method: 'POST', headers, body }];
}

export function StartForm(props: { call: Call; me: KeyInfo; onStarted: (job: Job) => void }) {
  const { call, me, onStarted } = props;
  const canRead = me.scopes.includes('jobs:read');
  const canWrite = me.scopes.includes('jobs:write');
  const [draft, setDraft] = useState<Draft>({
    tenant: me.tenants[0] ?? '',
    bot: '',
    ids: '',
    file: null,
    reason: '',
    plan: { keepHistory: false, keepVariables: false, keepNlu: false, flowOnly: false },
  });
  const [preview, setPreview] = useState<{ answer: Preview; idempotencyKey: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState('');
  // A new key remounts the file input: a browser keeps the chosen file otherwise.
  const [fileInput, setFileInput] = useState(0);

  const change = (next: Partial<Draft>): void => {
    setDraft({ ...draft, ...next });
    setPreview(null);
    setMessage('');
  };

  async function runPreview(event: Event): Promise<void> {
    event.preventDefault();
    if (draft.file === null && draft.ids.trim() === '')
      return setMessage('Paste session ids or choose a file.');
    setBusy(true);
    setMessage('');
    try {
      const answer = await getJson<Preview>(call, ...request(draft, '/v1/jobs/preview', { first: '5' }, {}));
      setPreview({ answer, idempotencyKey: crypto.randomUUID() });
    } catch (err) {
      setMessage(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  async function start(): Promise<void> {
    if (preview === null) return;
    setBusy(true);
    setMessage('');
    try {
      const init = { headers: { 'idempotency-key': preview.idempotencyKey } };
      const job = await getJson<Job>(call, ...request(draft, '/v1/jobs', {}, init));
      setPreview(null);
      setDraft({ ...draft, ids: '', file: null });
      setFileInput((n) => n + 1);
      onStarted(job);
    } catch (err) {
      setMessage(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  if (!canRead && !canWrite)
    return html`<section aria-labelledby="start-title">
      <h2 id="start-title">Start a job</h2>
      <p class="muted">
        This key has neither jobs:read nor jobs:write: it can neither preview nor start a job.
      </p>
    </section>`;

  return html`<section aria-labelledby="start-title">
    <h2 id="start-title">Start a job</h2>
    <form id="start" onSubmit=${(e: Event) => void runPreview(e)}>
      <div class="row">
        <label for="tenant">Tenant</label>
        <select
          id="tenant"
          value=${draft.tenant}
          onChange=${(e: Event) => change({ tenant: (e.target as HTMLSelectElement).value })}
        >
          ${me.tenants.map((name) => html`<option value=${name}>${name}</option>`)}
        </select>
        <label for="bot">Bot</label>
        <input
          id="bot"
          value=${draft.bot}
          placeholder="the tenant's default"
          onInput=${(e: Event) => change({ bot: (e.target as HTMLInputElement).value })}
        />
      </div>
      <label for="ids">Session ids, one a line</label>
      <textarea
        id="ids"
        rows="5"
        value=${draft.ids}
        disabled=${draft.file !== null}
        onInput=${(e: Event) => change({ ids: (e.target as HTMLTextAreaElement).value })}
      ></textarea>
      <label for="file">…or a file: one id a line, CSV with a sessionId column, or JSON Lines</label>
      <input
        key=${fileInput}
        id="file"
        type="file"
        accept=".txt,.csv,.jsonl,.ndjson,text/plain,text/csv"
        onChange=${(e: Event) => change({ file: (e.target as HTMLInputElement).files?.[0] ?? null })}
      />
      <label for="reason">Reason (recorded in each audit record)</label>
      <input
        id="reason"
        value=${draft.reason}
        maxlength="500"
        onInput=${(e: Event) => change({ reason: (e.target as HTMLInputElement).value })}
      />
      <fieldset disabled=${draft.file !== null}>
        <legend>What to keep${draft.file !== null ? ' (an upload clears every layer)' : ''}</legend>
        ${PLAN_OPTIONS.map(
          ([key, label]) =>
            html`<label class="check">
              <input
                type="checkbox"
                checked=${draft.plan[key]}
                onChange=${(e: Event) => change({ plan: { ...draft.plan, [key]: (e.target as HTMLInputElement).checked } })}
              />
              ${label}
            </label>`,
        )}
      </fieldset>
      ${
        canRead
          ? html`<button type="submit" disabled=${busy}>Preview</button>`
          : html`<p class="muted">
              This key lacks jobs:read: it cannot preview, so it cannot start a job from here.
            </p>`
      }
    </form>
    ${
      preview !== null &&
      html`<${PreviewView} preview=${preview.answer} /> ${
          canWrite
            ? html`<p class="confirm">
                <button type="button" id="confirm" disabled=${busy} onClick=${() => void start()}>
                  Confirm: reset ${whole(preview.answer.count)} sessions on ${preview.answer.tenant}
                </button>
                <button type="button" onClick=${() => setPreview(null)}>Change the request</button>
              </p>`
            : html`<p class="muted">This key lacks jobs:write: it can preview a job but not start it.</p>`
        }`
    }
    ${message !== '' && html`<p class="error" role="alert">${message}</p>`}
  </section>`;
}
