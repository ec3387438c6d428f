/**
 * The page: sign in with a key (kept in sessionStorage, this tab only), then what the key's scopes allow
 * — start a job, the jobs, one job live, the audit check — and a line saying what it lacks. The job
 * shown is in the URL's fragment (`#job=<id>`), so the back button and a reload keep it.
 */
import { html } from 'htm/preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, client, getJson, type KeyInfo } from './api.js';
import { AuditCheck } from './audit-check.js';
import { SCOPE_USES } from './format.js';
import { JobView } from './job-view.js';
import { JobsList } from './jobs-list.js';
import { StartForm } from './start-form.js';

const STORAGE = 'cr-key';

const selectedJob = (): string | null => {
  const match = /^#job=(.+)$/.exec(location.hash);
  return match === null ? null : decodeURIComponent(match[1]!);
};

function SignIn({ onKey, message }: { onKey: (key: string) => void; message: string }) {
  const [value, setValue] = useState('');
  return html`<form
    id="signin"
    onSubmit=${(e: Event) => {
      e.preventDefault();
      if (value.trim() !== '') onKey(value.trim());
    }}
  >
    <h2>Sign in</h2>
    <p>
      Paste an API key (<code>cognigy-reset keys create --scope jobs:read,jobs:write</code>). It is kept for
      this tab only.
    </p>
    <label for="key">API key</label>
    <input
      id="key"
      type="password"
      autocomplete="off"
      spellcheck="false"
      required
      value=${value}
      onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)}
    />
    <button type="submit">Sign in</button>
    ${message !== '' && html`<p class="error" role="alert">${message}</p>`}
  </form>`;
}

export function App() {
  const [key, setKey] = useState<string>(() => sessionStorage.getItem(STORAGE) ?? '');
  const [me, setMe] = useState<KeyInfo | null>(null);
  const [message, setMessage] = useState('');
  const [selected, setSelected] = useState<string | null>(selectedJob);
  const [refresh, setRefresh] = useState(0);
  const call = useMemo(() => client(key), [key]);

  useEffect(() => {
    const onHash = (): void => setSelected(selectedJob());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);

  useEffect(() => {
    setMe(null);
    if (key === '') return;
    getJson<KeyInfo>(call, '/v1/key')
      .then((info) => {
        setMe(info);
        setMessage('');
      })
      .catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 401)
          signOut('The key was refused: it is unknown or revoked.');
        else setMessage(err instanceof Error ? err.message : String(err));
      });
  }, [call]);

  function signIn(value: string): void {
    sessionStorage.setItem(STORAGE, value);
    setKey(value);
  }

  function signOut(why = ''): void {
    sessionStorage.removeItem(STORAGE);
    setKey('');
    setMessage(why);
  }

  const header = html`<header>
    <h1>cognigy-reset</h1>
    ${
      key !== '' &&
      html`<p class="who">
        ${me === null ? '' : html`Key <code>${me.id}</code>${me.boundTo.length > 0 ? ` (tenants ${me.boundTo.join(', ')})` : ''} `}
        <button type="button" onClick=${() => signOut()}>Sign out</button>
      </p>`
    }
  </header>`;

  if (key === '')
    return html`${header}
      <main><${SignIn} onKey=${signIn} message=${message} /></main>`;
  if (me === null)
    return html`${header}
      <main>
        <p role="status">${message === '' ? 'Signing in…' : ''}</p>
        ${message !== '' && html`<p class="error" role="alert">${message}</p>`}
      </main>`;

  const can = (scope: string): boolean => me.scopes.includes(scope);
  return html`${header}
    <main>
      <p id="scopes" class="muted">
        This key can ${me.scopes.map((s) => SCOPE_USES[s] ?? s).join('; ')}.
        ${me.lacks.length > 0 && ` It lacks ${me.lacks.map((s) => `${s} (${SCOPE_USES[s] ?? s})`).join(', ')}.`}
      </p>
      ${
        (can('jobs:read') || can('jobs:write')) &&
        html`<${StartForm}
          call=${call}
          me=${me}
          onStarted=${(job: { id: string }) => {
            location.hash = `job=${encodeURIComponent(job.id)}`;
            setRefresh((n) => n + 1);
          }}
        />`
      }
      ${can('jobs:read') && html`<${JobsList} call=${call} selected=${selected} refresh=${refresh} />`}
      ${
        can('jobs:read') &&
        selected !== null &&
        html`<${JobView}
          call=${call}
          id=${selected}
          canWrite=${can('jobs:write')}
          onChange=${() => setRefresh((n) => n + 1)}
        />`
      }
      <${AuditCheck} call=${call} me=${me} />
    </main>`;
}
