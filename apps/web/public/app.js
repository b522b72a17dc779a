// My page: sign in, resumable upload (tus-js-client), live job progress (EventSource) that survives
// closing the page: the job list comes from the catalog DB (GET /me/shorts/jobs), and each unfinished
// job's event stream is replayed from the start (or from the last event id this page saw) on reopen.
'use strict';
const $ = (id) => document.getElementById(id);
const state = { token: localStorage.getItem('mallscale.token'), streams: new Map(), sse: new Map() };

async function api(path, opts = {}) {
  // content-type only with a body: Fastify answers 400 to an empty body declared as JSON.
  const headers = { ...(opts.body ? { 'content-type': 'application/json' } : {}), ...(state.token ? { authorization: `Bearer ${state.token}` } : {}), ...(opts.headers || {}) };
  const res = await fetch(path, { ...opts, headers });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body?.error?.message || `HTTP ${res.status}`);
  return body;
}

async function signIn(create) {
  $('auth-error').textContent = '';
  const creds = { email: $('email').value, password: $('password').value };
  try {
    if (create) await api('/auth/sign-up', { method: 'POST', body: JSON.stringify(creds) });
    const { accessToken } = await api('/auth/sign-in', { method: 'POST', body: JSON.stringify(creds) });
    state.token = accessToken;
    localStorage.setItem('mallscale.token', accessToken);
    await show();
  } catch (e) {
    $('auth-error').textContent = e.message;
  }
}

async function show() {
  if (state.token) {
    try {
      const me = await api('/me');
      $('who').textContent = me.email;
    } catch {
      state.token = null;
      localStorage.removeItem('mallscale.token');
    }
  }
  if (!state.token) $('who').textContent = '';
  $('auth').hidden = !!state.token;
  $('app').hidden = !state.token;
  $('sign-out').hidden = !state.token;
  if (state.token) await refreshJobs();
}

const TERMINAL = ['DONE', 'FAILED'];

function row(job) {
  let tr = document.querySelector(`tr[data-job="${job.id}"]`);
  if (!tr) {
    tr = document.createElement('tr');
    tr.dataset.job = job.id;
    tr.innerHTML = '<td class="name"></td><td class="step"></td><td><div class="bar"><div></div></div><span class="pct"></span></td><td class="result"></td><td class="when"></td>';
    $('jobs').prepend(tr);
  }
  tr.querySelector('.name').textContent = job.fileName;
  tr.querySelector('.when').textContent = new Date(job.createdAt).toLocaleString();
  return tr;
}

function paint(tr, jobId, step, percent, reason) {
  const s = tr.querySelector('.step');
  s.textContent = step + (reason ? ` — ${reason}` : '');
  s.className = `step ${step}`;
  tr.querySelector('.bar > div').style.width = `${percent}%`;
  tr.querySelector('.pct').textContent = ` ${percent}%`;
  if (step === 'DONE') {
    const a = document.createElement('a');
    a.href = '#';
    a.textContent = 'download';
    a.onclick = (ev) => { ev.preventDefault(); download(jobId); };
    tr.querySelector('.result').replaceChildren(a);
  }
}

async function download(jobId) {
  const res = await fetch(`/shorts/jobs/${jobId}/result`, { headers: { authorization: `Bearer ${state.token}` } });
  const url = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement('a'), { href: url, download: `${jobId}-shorts.zip` });
  a.click();
  URL.revokeObjectURL(url);
}

// An event-stream token opens one job's stream only: one per job, renewed shortly before it expires.
async function sseToken(jobId) {
  const held = state.sse.get(jobId);
  if (held && held.until > Date.now()) return held.token;
  const { token, expiresIn } = await api(`/shorts/jobs/${jobId}/events-token`, { method: 'POST' });
  state.sse.set(jobId, { token, until: Date.now() + (expiresIn - 30) * 1000 });
  return token;
}

async function follow(job, tr) {
  if (state.streams.has(job.id) || TERMINAL.includes(job.status)) return;
  const lastKey = `mallscale.lastEvent.${job.id}`;
  const open = async () => {
    const last = sessionStorage.getItem(lastKey);
    const url = `/shorts/jobs/${job.id}/events?token=${encodeURIComponent(await sseToken(job.id))}${last ? `&lastEventId=${encodeURIComponent(last)}` : ''}`;
    const es = new EventSource(url);
    state.streams.set(job.id, es);
    es.addEventListener('progress', (m) => {
      const e = JSON.parse(m.data);
      if (m.lastEventId) sessionStorage.setItem(lastKey, m.lastEventId);
      paint(tr, job.id, e.step, e.percent, e.reason);
      if (TERMINAL.includes(e.step)) { es.close(); state.streams.delete(job.id); state.sse.delete(job.id); }
    });
    es.onerror = () => {
      // The browser retries by itself while it can; once closed (e.g. the token expired), reopen.
      if (es.readyState === EventSource.CLOSED) { state.streams.delete(job.id); state.sse.delete(job.id); setTimeout(open, 2000); }
    };
  };
  await open();
}

async function refreshJobs() {
  const { jobs } = await api('/me/shorts/jobs');
  for (const job of [...jobs].reverse()) {
    const tr = row(job);
    paint(tr, job.id, job.status, job.progress, job.reason);
    await follow(job, tr);
  }
}

function upload(file) {
  const upload = new tus.Upload(file, {
    endpoint: '/shorts/uploads',
    headers: { authorization: `Bearer ${state.token}` },
    metadata: { filename: file.name, filetype: file.type },
    chunkSize: 16 * 1024 * 1024,
    retryDelays: [0, 1000, 3000, 5000, 10000],
    removeFingerprintOnSuccess: true,
    onProgress: (sent, total) => {
      const pct = Math.floor((sent / total) * 100);
      $('upload-bar').style.width = `${pct}%`;
      $('upload-status').textContent = `uploading ${file.name}: ${pct}%`;
    },
    onError: (e) => { $('upload-status').textContent = `upload failed: ${e.message}`; },
    onSuccess: async () => {
      $('upload-status').textContent = `${file.name} uploaded: queued for the model`;
      await refreshJobs();
    },
  });
  upload.findPreviousUploads().then((previous) => {
    if (previous.length) {
      upload.resumeFromPreviousUpload(previous[0]);
      $('upload-status').textContent = `resuming ${file.name}…`;
    }
    upload.start();
  });
}

$('auth-form').addEventListener('submit', (e) => { e.preventDefault(); signIn(false); });
$('sign-up').addEventListener('click', () => signIn(true));
$('sign-out').addEventListener('click', () => { localStorage.removeItem('mallscale.token'); state.token = null; for (const es of state.streams.values()) es.close(); state.streams.clear(); state.sse.clear(); show(); });
$('file').addEventListener('change', (e) => { if (e.target.files[0]) upload(e.target.files[0]); });
show();
