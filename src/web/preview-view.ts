/** What a previewed job would do: its count, each layer cleared or not, and the first directives. */
import { html } from 'htm/preact';
import type { Preview } from './api.js';
import { whole } from './format.js';

const LAYERS = [
  ['flow', 'flow position'],
  ['dialog', 'dialog state'],
  ['engine', 'engine state'],
  ['variables', 'variables'],
  ['history', 'history'],
  ['nlu', 'NLU context'],
] as const;

function layerState(preview: Preview, layer: string): string {
  if (preview.plan.cleared.includes(layer)) return 'cleared';
  if (preview.plan.notClearable.includes(layer)) return `not cleared: ${preview.transport} cannot`;
  return 'kept, as asked';
}

export function PreviewView({ preview }: { preview: Preview }) {
  return html`<div id="preview" class="preview" aria-labelledby="preview-title">
    <h3 id="preview-title">Preview: nothing has been sent</h3>
    <p id="preview-count">
      <strong>${whole(preview.count)}</strong> sessions on tenant ${preview.tenant}, bot ${preview.bot},
      through ${' '}${preview.transport}${preview.dryRun ? ' (a dry run)' : ''}; each directive allows
      ${' '}${preview.maxDurationSec} s.
    </p>
    <table id="layers">
      <caption>
        What each reset clears
      </caption>
      <thead>
        <tr>
          <th scope="col">layer</th>
          <th scope="col">this job</th>
        </tr>
      </thead>
      <tbody>
        ${LAYERS.map(
          ([layer, name]) =>
            html`<tr>
              <th scope="row">${name}</th>
              <td>${layerState(preview, layer)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
    <p class="muted">
      stateClearMatrix <code>${JSON.stringify(preview.plan.stateClearMatrix)}</code>, contextWipeDirective
      ${' '}<code>${JSON.stringify(preview.plan.contextWipeDirective)}</code>
    </p>
    <h4>The first ${preview.directives.length} directives, as the engine would get them</h4>
    <ol class="directives">
      ${preview.directives.map((d) => html`<li><pre>${d.frame}</pre></li>`)}
    </ol>
  </div>`;
}
