/**
 * The dashboard at `/`: one static page, no build step, no CDN. The user pastes an API key (kept in
 * sessionStorage, for this tab only); the page lists jobs and follows one live. EventSource cannot send a
 * header, so the page reads the SSE stream with fetch.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cognigy-reset</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #111; background: #fff; max-width: 70rem; }
  h1 { font-size: 1.3rem; } h2 { font-size: 1.1rem; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #ccc; }
  button { font: inherit; padding: .3rem .8rem; } input { font: inherit; padding: .3rem; width: 28rem; max-width: 100%; }
  progress { width: 100%; height: 1.2rem; } .error { color: #a00000; } .muted { color: #444; }
  a { color: #0645ad; }
</style>
</head>
<body>
<h1>cognigy-reset</h1>
<form id="signin">
  <label for="key">API key</label>
  <input id="key" type="password" autocomplete="off" required>
  <button type="submit">Sign in</button>
  <button type="button" id="signout">Sign out</button>
  <span class="muted">kept for this tab only</span>
</form>
<p id="message" class="error" role="alert"></p>
<section aria-labelledby="jobs-title">
  <h2 id="jobs-title">Jobs</h2>
  <table><thead><tr><th>id</th><th>tenant</th><th>state</th><th>done / total</th><th>created</th></tr></thead>
  <tbody id="jobs"></tbody></table>
</section>
<section id="job" aria-labelledby="job-title" hidden>
  <h2 id="job-title">Job</h2>
  <progress id="progress" max="1" value="0" aria-label="progress"></progress>
  <p id="summary" aria-live="polite"></p>
  <p id="errors"></p>
  <button type="button" id="cancel">Cancel job</button>
  <a id="failed" href="#">Download failed sessions</a>
</section>
<script>
const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem('cr-key') || '';
let following = null;
const say = (text) => { $('message').textContent = text; };
async function api(path, init = {}) {
  const res = await fetch(path, { ...init, headers: { authorization: 'Bearer ' + key, ...(init.headers || {}) } });
  if (!res.ok) {
    const problem = await res.json().catch(() => ({}));
    throw new Error((problem.code || res.status) + ': ' + (problem.detail || res.statusText));
  }
  return res;
}
function cell(text) { const td = document.createElement('td'); td.textContent = text; return td; }
async function loadJobs() {
  if (!key) return;
  try {
    const { jobs } = await (await api('/v1/jobs?limit=100')).json();
    const body = $('jobs'); body.replaceChildren();
    for (const job of jobs) {
      const tr = document.createElement('tr');
      const link = document.createElement('a'); link.href = '#' + job.id; link.textContent = job.id;
      link.addEventListener('click', (e) => { e.preventDefault(); follow(job.id); });
      const id = document.createElement('td'); id.append(link);
      tr.append(id, cell(job.tenant), cell(job.state), cell(job.done + ' / ' + job.counts.total), cell(job.createdAt));
      body.append(tr);
    }
    say('');
  } catch (err) { say(String(err.message)); }
}
function show(job) {
  $('job').hidden = false;
  $('job-title').textContent = 'Job ' + job.id + ': ' + job.state;
  $('progress').max = Math.max(1, job.counts.total); $('progress').value = job.done;
  const pct = job.counts.total ? Math.floor((100 * job.done) / job.counts.total) : 0;
  $('summary').textContent = pct + ' % · reset ' + job.counts.reset + ', verified ' + job.counts.verified +
    ', failed ' + job.counts.failed + ', skipped ' + job.counts.skipped + ' · ' + job.rate + '/s' +
    (job.etaSec === null ? '' : ' · ETA ' + Math.round(job.etaSec) + ' s') +
    ' · latency p50 ' + job.latencyMs.p50 + ' ms, p95 ' + job.latencyMs.p95 + ' ms, p99 ' + job.latencyMs.p99 + ' ms' +
    (job.pace === null ? '' : ' · pace ' + job.pace + '/s');
  const codes = Object.entries(job.errors).map(([code, n]) => code + ': ' + n).join(', ');
  $('errors').textContent = codes ? 'Errors: ' + codes : '';
}
async function follow(id) {
  if (following) following.abort();
  following = new AbortController();
  try {
    const res = await api('/v1/jobs/' + id + '/events', { signal: following.signal });
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf('\\n\\n')) !== -1) {
        const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
        const data = block.split('\\n').find((l) => l.startsWith('data: '));
        if (data) show(JSON.parse(data.slice(6)));
      }
    }
    loadJobs();
  } catch (err) { if (err.name !== 'AbortError') say(String(err.message)); }
}
$('cancel').addEventListener('click', async () => {
  const id = $('job-title').textContent.split(' ')[1].replace(':', '');
  try { await api('/v1/jobs/' + id + '/cancel', { method: 'POST' }); } catch (err) { say(String(err.message)); }
});
$('failed').addEventListener('click', async (e) => {
  e.preventDefault();
  const id = $('job-title').textContent.split(' ')[1].replace(':', '');
  try {
    const blob = await (await api('/v1/jobs/' + id + '/outcomes?outcome=failed')).blob();
    const a = document.createElement('a'); a.href = URL.createObjectURL(blob); a.download = id + '-failed.jsonl'; a.click();
  } catch (err) { say(String(err.message)); }
});
$('signin').addEventListener('submit', (e) => {
  e.preventDefault(); key = $('key').value.trim(); sessionStorage.setItem('cr-key', key); $('key').value = ''; loadJobs();
});
$('signout').addEventListener('click', () => { key = ''; sessionStorage.removeItem('cr-key'); $('jobs').replaceChildren(); $('job').hidden = true; });
loadJobs();
setInterval(loadJobs, 3000);
</script>
</body>
</html>
`;
