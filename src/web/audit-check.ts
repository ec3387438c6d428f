/** Verify the audit chain from genesis and show the answer (audit:read, a key bound to no tenant). */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { type Call, getJson, type KeyInfo, type Verification } from './api.js';
import { whole } from './format.js';

export function AuditCheck({ call, me }: { call: Call; me: KeyInfo }) {
  const [result, setResult] = useState<Verification | null>(null);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState('');
  const allowed = me.scopes.includes('audit:read') && me.boundTo.length === 0;

  async function verify(): Promise<void> {
    setBusy(true);
    setMessage('');
    setResult(null);
    try {
      setResult(await getJson<Verification>(call, '/v1/audit/verify'));
    } catch (err) {
      setMessage(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return html`<section aria-labelledby="audit-title">
    <h2 id="audit-title">Audit log</h2>
    ${
      allowed
        ? html`<button type="button" id="verify" disabled=${busy} onClick=${() => void verify()}>
            Verify the audit chain
          </button>`
        : html`<p class="muted">
            ${
              me.scopes.includes('audit:read')
                ? 'Verifying the whole chain needs a key bound to no tenant; this one is bound to some.'
                : 'This key lacks audit:read: it cannot verify the audit chain.'
            }
          </p>`
    }
    <p id="audit-result" role="status" class=${result !== null && !result.ok ? 'error' : ''}>
      ${busy ? 'Verifying…' : ''}
      ${
        result !== null &&
        (result.ok
          ? `The chain is intact: ${whole(result.records)} records, head #${result.headSeq ?? 0}.`
          : `The chain is broken at record #${result.problem?.seq ?? '?'}: ${result.problem?.problem ?? ''}`)
      }
    </p>
    ${message !== '' && html`<p class="error" role="alert">${message}</p>`}
  </section>`;
}
