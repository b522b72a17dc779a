// The trade-off console: admin signs in, the page reads /admin/console/stream (fetch + a reader: the stream
// needs the Authorization header, which EventSource cannot send), draws the topology as boxes of the
// system-design diagram and the rates as uPlot charts, and runs experiments (POST, then follows them on the stream).
const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem('mallscale.console.token'), abort: null, charts: new Map(), experiments: [], experimentsOn: false };
const WINDOW = 120; // seconds of history in the charts

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { ...(opts.body ? { 'content-type': 'application/json' } : {}), ...(state.token ? { authorization: `Bearer ${state.token}` } : {}), ...(opts.headers || {}) } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(body.message || `HTTP ${res.status}`), { status: res.status, body });
  return body;
}

$('auth-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('auth-error').textContent = '';
  try {
    const { accessToken } = await api('/auth/sign-in', { method: 'POST', body: JSON.stringify({ email: $('email').value, password: $('password').value }) });
    state.token = accessToken;
    const me = await api('/me');
    if (me.role !== 'admin') {
      state.token = null;
      throw new Error('the console is for admins only');
    }
    sessionStorage.setItem('mallscale.console.token', accessToken);
    await show();
  } catch (err) {
    $('auth-error').textContent = err.message;
  }
});

$('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem('mallscale.console.token');
  state.token = null;
  state.abort?.abort();
  void show();
});

async function show() {
  if (!state.token) {
    $('auth').hidden = false;
    $('app').hidden = true;
    $('sign-out').hidden = true;
    $('who').textContent = '';
    return;
  }
  try {
    const me = await api('/me');
    $('who').textContent = me.email;
  } catch {
    state.token = null;
    return show();
  }
  $('auth').hidden = true;
  $('app').hidden = false;
  $('sign-out').hidden = false;
  await loadExperiments();
  void follow();
}

// ------------------------------------------------------------------ stream
async function follow() {
  state.abort?.abort();
  const abort = new AbortController();
  state.abort = abort;
  while (!abort.signal.aborted) {
    try {
      const res = await fetch('/admin/console/stream', { headers: { authorization: `Bearer ${state.token}` }, signal: abort.signal });
      if (!res.ok) throw new Error(`stream: HTTP ${res.status}`);
      $('live').textContent = 'live';
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (data) onSnapshot(JSON.parse(data));
        }
      }
    } catch (e) {
      if (abort.signal.aborted) return;
      $('live').textContent = `reconnecting (${e.message})`;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

function onSnapshot(s) {
  window.lastSnapshot = s;
  $('live').textContent = `live · ${new Date(s.at).toLocaleTimeString()}`;
  drawTopology(s);
  drawCharts(s);
  if (s.experiments) drawRuns(s.experiments);
}

// ------------------------------------------------------------------ topology
const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const kv = (k, v) => (v === undefined || v === null || v === '' ? '' : `<div class="kv">${esc(k)}: <b>${esc(v)}</b></div>`);

function nodeBox(n) {
  const st = !n.ready ? 'down' : n.routing && !n.routing.inRotation ? 'degraded' : 'up';
  const label = n.role === 'redis' ? (n.name === 'redis-cache' ? 'L2 + invalidation pub/sub' : 'BullMQ jobs, progress streams, limits') : n.role;
  let html = `<h3>${esc(n.name)}</h3><div class="kv">${esc(label)}${n.port ? ` · :${esc(n.port)}` : ''}</div>`;
  if (n.routing) html += `<div class="kv"><span class="badge ${n.routing.inRotation ? 'in' : 'out'}" data-rotation="${n.routing.inRotation ? 'in' : 'out'}">${n.routing.inRotation ? 'in rotation' : 'out of rotation'}</span> ${esc(n.routing.inRotation ? '' : n.routing.reason)}</div>`;
  if (n.role === 'replica') html += kv('lag', n.routing?.lagMs != null ? `${n.routing.lagMs} ms` : n.lagSeconds != null ? `${n.lagSeconds} s` : '—');
  if (n.bucketShare !== undefined) html += kv('buckets', `${n.buckets} (${Math.round(n.bucketShare * 100)} %)`);
  if (n.selectsPerS != null) html += kv('selects/s', n.selectsPerS);
  if (n.latencyMs !== undefined) html += kv('ping', `${n.latencyMs} ms`);
  if (!n.ready) html += kv('detail', n.detail);
  return `<div class="node" data-node="${esc(n.name)}" data-role="${esc(n.role)}" data-state="${st}">${html}</div>`;
}

function drawTopology(s) {
  const a = s.api;
  const routes = Object.entries(s.rates.routes).filter(([, r]) => r.rps > 0).map(([f, r]) => `${f} ${r.rps}/s`).join(' · ');
  const api = $('node-api');
  api.dataset.state = s.status === 'down' ? 'down' : s.status === 'degraded' ? 'degraded' : 'up';
  api.innerHTML = `<h3>shop-api <small class="muted">this instance</small></h3>` +
    kv('instance', `${a.instanceId.slice(0, 8)} · pid ${a.pid} · up ${a.uptimeS} s · ${a.rssMb} MB`) +
    kv('ProductCache', a.cacheMode === a.configuredCacheMode ? a.cacheMode : `${a.cacheMode} (configured ${a.configuredCacheMode})`) +
    kv('routes', routes || 'idle');
  const by = (role) => s.nodes.filter((n) => n.role === role);
  const redis = (name) => s.nodes.filter((n) => n.name === name);
  $('tier-data').innerHTML = [...redis('redis-cache'), ...by('primary'), ...by('replica'), ...redis('redis-queue')].map(nodeBox).join('');
  const q = s.queue;
  const workers = `<div class="node" data-node="workers" data-role="worker" data-state="${s.workers.length ? 'up' : 'degraded'}"><h3>shorts-worker × ${s.workers.length}</h3>` +
    kv('seen through BullMQ', s.workers.map((w) => w.addr).join(', ') || 'none connected') +
    (q ? kv(`queue ${q.name}`, `${q.waiting} waiting · ${q.active} active · ${q.failed} failed`) : '') + '</div>';
  $('tier-shards').innerHTML = by('shard').map(nodeBox).join('') + workers;
}

// ------------------------------------------------------------------ charts (uPlot)
function chart(id, title, names) {
  let c = state.charts.get(id);
  if (c) return c;
  const el = document.createElement('div');
  el.className = 'chart';
  el.dataset.chart = id;
  el.innerHTML = `<h3>${esc(title)}</h3>`;
  $('charts').append(el);
  const colors = ['#3a7', '#37b', '#d60', '#b3a', '#999', '#a82', '#2aa'];
  const data = [[], ...names.map(() => [])];
  const plot = new uPlot({
    width: 380, height: 170,
    series: [{}, ...names.map((n, i) => ({ label: n, stroke: colors[i % colors.length], width: 1.5, spanGaps: true }))],
    axes: [{}, { size: 50 }],
    scales: { x: { time: true } },
    legend: { live: false },
  }, data, el);
  c = { plot, data, names };
  state.charts.set(id, c);
  return c;
}

function push(id, title, values) {
  const c = chart(id, title, Object.keys(values));
  c.data[0].push(Date.now() / 1000);
  c.names.forEach((n, i) => c.data[i + 1].push(values[n] ?? null));
  if (c.data[0].length > WINDOW) for (const col of c.data) col.shift();
  c.plot.setData(c.data);
}

const FAMILIES = ['/products', '/categories', '/orders', '/me', '/auth', '/shorts'];
function drawCharts(s) {
  const r = s.rates;
  if (!r.intervalS) return;
  push('rps', 'requests/s per route family', Object.fromEntries(FAMILIES.map((f) => [f, r.routes[f]?.rps ?? 0])));
  push('p99', 'p99 ms per route family (histogram bucket bound)', Object.fromEntries(FAMILIES.map((f) => [f, r.routes[f]?.p99Ms ?? null])));
  push('cache', 'ProductCache per second', { 'L1 hits': r.cacheHits.l1 ?? 0, 'L2 hits': r.cacheHits.l2 ?? 0, 'DB loads': r.dbLoads, coalesced: r.coalesced, 'lease waits': r.leaseWaits });
  const db = s.nodes.filter((n) => n.role !== 'redis');
  push('db', 'selects/s per database node (SHOW GLOBAL STATUS Com_select)', Object.fromEntries(db.map((n) => [n.name, n.selectsPerS ?? null])));
  push('orders', 'orders/s per shard', Object.fromEntries(db.filter((n) => n.role === 'shard').map((n) => [n.name, r.ordersByShard[n.name] ?? 0])));
  push('queue', 'shorts queue', { waiting: s.queue?.waiting ?? null, active: s.queue?.active ?? null, workers: s.workers.length });
  // Rows per monthly partition of orders, summed over the shards (/metrics orders_partition_rows); the newest months.
  const parts = {};
  for (const byPart of Object.values(s.partitionRows || {})) for (const [p, n] of Object.entries(byPart)) parts[p] = (parts[p] ?? 0) + n;
  const names = Object.keys(parts).sort().slice(-6);
  if (names.length) push('partitions', 'orders rows per monthly partition, all shards (INFORMATION_SCHEMA.PARTITIONS)', Object.fromEntries(names.map((p) => [p, parts[p]])));
  push('jobs', 'shorts jobs/hour (finished in the last hour)', { done: s.jobsLastHour?.done ?? null, failed: s.jobsLastHour?.failed ?? null });
}

// ------------------------------------------------------------------ experiments
async function loadExperiments() {
  try {
    const { experiments } = await api('/admin/console/experiments');
    state.experiments = experiments;
    state.experimentsOn = true;
  } catch (e) {
    if (e.status !== 404) throw e;
    state.experimentsOn = false;
  }
  $('experiments-off').hidden = state.experimentsOn;
  $('experiments').innerHTML = state.experiments.map((x) => `
    <div class="exp" id="exp-${esc(x.name)}" data-experiment="${esc(x.name)}">
      <button type="button" class="run">Run</button><b>${esc(x.title)}</b> <span class="muted">~${Math.ceil(x.seconds)} s</span>
      <span class="state"></span>
      <div class="muted">${esc(x.explain)} <code data-doc="${esc(x.doc)}">${esc(x.doc)}</code></div>
      <p class="progress"></p>
      <div class="panel"></div>
    </div>`).join('');
  for (const x of state.experiments) {
    $(`exp-${x.name}`).querySelector('.run').addEventListener('click', async () => {
      const box = $(`exp-${x.name}`);
      try {
        await api(`/admin/console/experiments/${x.name}`, { method: 'POST' });
        box.querySelector('.state').textContent = 'running…';
        box.querySelector('.state').className = 'state running';
      } catch (e) {
        box.querySelector('.state').textContent = e.message;
        box.querySelector('.state').className = 'state failed';
      }
    });
  }
}

function drawRuns({ running, last }) {
  const runs = [...last, ...(running ? [running] : [])];
  for (const x of state.experiments) {
    const box = $(`exp-${x.name}`);
    if (!box) continue;
    box.querySelector('.run').disabled = !!running;
    const run = runs.filter((r) => r.name === x.name).at(-1);
    if (!run) continue;
    box.dataset.state = run.state;
    box.dataset.run = run.id;
    const st = box.querySelector('.state');
    st.textContent = run.state === 'running' ? 'running…' : run.state === 'done' ? 'done' : `failed: ${run.error}`;
    st.className = `state ${run.state}`;
    box.querySelector('.progress').textContent = run.state === 'running' ? run.progress.at(-1) || '' : run.undone.length ? `undone: ${run.undone.map((u) => `${u.what}${u.ok ? '' : ' (FAILED)'}`).join('; ')}` : '';
    const res = run.result;
    if (!res || box.dataset.rendered === run.id) continue;
    box.dataset.rendered = run.id;
    const cols = [...new Set(res.rows.flatMap((r) => Object.keys(r)))];
    box.querySelector('.panel').innerHTML = `<table><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${res.rows.map((r) => `<tr>${cols.map((c) => `<td>${esc(r[c] ?? '')}</td>`).join('')}</tr>`).join('')}</table>` +
      `<p class="headline">${esc(res.headline)} <span class="muted">(${esc(res.doc)})</span></p>` +
      `<dl hidden>${Object.entries(res.numbers).map(([k, v]) => `<dd data-number="${esc(k)}">${esc(v)}</dd>`).join('')}</dl>`;
  }
}

void show();
