// The lps web console (docs/console.md): plain JavaScript, no framework, no build step, no
// request to any host but the lps that served it. Every figure comes from the API routes;
// charts are plain SVG drawn from samples kept in the browser for 10 minutes.
'use strict';

(() => {
  // -- the token: sent as Authorization: Bearer on every API call, kept for the tab only --

  const TOKEN_KEY = 'lps.console.token';
  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

  async function api(path, options = {}) {
    const headers = { ...options.headers };
    if (token()) headers.Authorization = 'Bearer ' + token();
    return fetch(path, { ...options, headers, cache: 'no-store' });
  }

  // Resolves to the parsed body, or rejects with the HTTP status in the message.
  async function read(path, parse) {
    const response = await api(path);
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return parse(response);
  }

  // -- the data source: the one place that knows where snapshots come from --

  // Today: the routes that exist, polled once a second. The stream /api/v1/inspect/stream
  // would replace this function and call the same `deliver` with the same snapshot shape.
  const POLL_INTERVAL_MS = 1000;
  const SOURCES = {
    metrics: ['/metrics', (r) => r.text().then(parsePrometheus)],
    actors: ['/api/v1/inspect', (r) => r.json().then((b) => b.actors)],
    runs: ['/api/v1/runs', (r) => r.json().then((b) => b.runs)],
    providers: ['/api/v1/providers', (r) => r.json().then((b) => b.providers)],
    jobs: ['/api/v1/batch-jobs', (r) => r.json().then((b) => b.jobs)],
    config: ['/api/v1/config', (r) => r.json().then((b) => b.settings)],
  };

  function startPolling(deliver) {
    const once = async () => {
      const names = Object.keys(SOURCES);
      const answers = await Promise.allSettled(names.map((n) => read(...SOURCES[n])));
      const snapshot = { at: Date.now(), errors: [] };
      answers.forEach((answer, i) => {
        if (answer.status === 'fulfilled') snapshot[names[i]] = answer.value;
        else snapshot.errors.push(answer.reason.message);
      });
      deliver(snapshot);
      setTimeout(once, POLL_INTERVAL_MS); // after the answers: a slow lps is never asked twice
    };
    once();
  }

  // -- Prometheus text exposition --

  // Prometheus spells infinity "+Inf", which Number() does not read.
  const promNumber = (text) => (text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text));

  // [{name, labels, value}] for every sample line; comments and blank lines are skipped.
  function parsePrometheus(text) {
    const samples = [];
    const line = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/;
    const label = /(\w+)="((?:[^"\\]|\\.)*)"/g;
    for (const row of text.split('\n')) {
      const m = line.exec(row);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || '').matchAll(label)) labels[l[1]] = l[2];
      samples.push({ name: m[1], labels, value: promNumber(m[3]) });
    }
    return samples;
  }

  const matches = (sample, name, filter) =>
    sample.name === name && Object.entries(filter).every(([k, v]) => sample.labels[k] === v);

  // The sum of every series of `name` whose labels include `filter`.
  function total(samples, name, filter = {}) {
    return samples.filter((s) => matches(s, name, filter)).reduce((a, s) => a + s.value, 0);
  }

  // Cumulative bucket counts of histogram `name` summed over its series: [[le, count], ...].
  function buckets(samples, name, filter = {}) {
    const byLe = new Map();
    for (const s of samples.filter((x) => matches(x, name + '_bucket', filter))) {
      const le = promNumber(s.labels.le);
      byLe.set(le, (byLe.get(le) || 0) + s.value);
    }
    return [...byLe.entries()].sort((a, b) => a[0] - b[0]);
  }

  // Prometheus' histogram_quantile: linear within the bucket; null without observations.
  function quantile(q, cumulative) {
    const count = cumulative.length ? cumulative[cumulative.length - 1][1] : 0;
    if (count <= 0) return null;
    const rank = q * count;
    let [lower, below] = [0, 0];
    for (const [le, n] of cumulative) {
      if (n >= rank) {
        if (!isFinite(le)) return lower; // beyond the last bound: its lower edge, as Prometheus
        return lower + ((le - lower) * (rank - below)) / Math.max(n - below, 1e-9);
      }
      [lower, below] = [le, n];
    }
    return lower;
  }

  // Bucket counts of `now` minus those of `before` (the observations between the two).
  const bucketDelta = (now, before) =>
    now.map(([le, n]) => [le, n - ((before.find((b) => b[0] === le) || [le, 0])[1])]);

  // -- history: one sample a second for 10 minutes --

  const HISTORY_MS = 10 * 60 * 1000;
  const RATE_WINDOW_MS = 60 * 1000;
  const history = [];

  function sampleOf(snapshot) {
    const m = snapshot.metrics;
    return {
      at: snapshot.at,
      queued: total(m, 'llm_provider_queue_depth', { status: 'queued' }),
      processing: total(m, 'llm_provider_queue_depth', { status: 'processing' }),
      successes: total(m, 'llm_provider_comparison_callbacks_total', { result: 'success' }),
      results: total(m, 'llm_provider_comparison_callbacks_total'),
      accepted: total(m, 'llm_provider_requests_accepted_total'),
      wait: buckets(m, 'llm_provider_queue_wait_time_seconds'),
    };
  }

  // The oldest sample within `ms` of `now` (the base of rates and window percentiles).
  function windowStart(now, ms) {
    return history.find((s) => s.at >= now.at - ms) || now;
  }

  function derived(now) {
    const base = windowStart(now, RATE_WINDOW_MS);
    const span = (now.at - base.at) / 1000;
    const rate = (f) => (span > 0 ? (f(now) - f(base)) / span : 0);
    const window = bucketDelta(now.wait, base.wait);
    return {
      completions: rate((s) => s.successes),
      errors: rate((s) => s.results - s.successes),
      p50: quantile(0.5, window),
      p99: quantile(0.99, window),
    };
  }

  function remember(snapshot) {
    if (!snapshot.metrics) return;
    const sample = sampleOf(snapshot);
    history.push(sample);
    while (history.length && history[0].at < sample.at - HISTORY_MS) history.shift();
    Object.assign(sample, derived(sample));
  }

  // -- formatting and DOM helpers --

  const $ = (selector) => document.querySelector(selector);
  const fmt = (x, digits = 0) =>
    x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toFixed(digits);
  const seconds = (s) => (s === null ? '–' : s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`);
  const duration = (s) => {
    if (s === null || s === undefined) return '–';
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    return `${(s / 3600).toFixed(1)} h`;
  };

  // A <td> with text (never HTML: every value from lps is shown as text).
  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function progressBar(fraction) {
    const outer = document.createElement('div');
    outer.className = 'progress';
    outer.setAttribute('role', 'progressbar');
    // Rounded down: 100 % only when everything is done.
    const percent = Math.floor(Math.min(Math.max(fraction, 0), 1) * 100);
    outer.setAttribute('aria-valuenow', String(percent));
    outer.title = `${percent} %`;
    const inner = document.createElement('div');
    inner.style.width = `${percent}%`;
    outer.append(inner);
    return outer;
  }

  function fillRows(table, rows) {
    const body = $(`${table} tbody`);
    body.replaceChildren(...rows);
  }

  // -- charts: plain SVG --

  const SVG = 'http://www.w3.org/2000/svg';
  const CHART = { width: 420, height: 160, left: 40, bottom: 18, top: 8 };

  function svgNode(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // Lines over the last 10 minutes; `series` are functions of a history sample.
  function lineChart(svg, series) {
    const { width, height, left, bottom, top } = CHART;
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const end = history.length ? history[history.length - 1].at : Date.now();
    const values = series.map((f) => history.map((s) => [s.at, f(s)]));
    const max = Math.max(1e-9, ...values.flat().map(([, v]) => v || 0));
    const x = (t) => left + ((t - (end - HISTORY_MS)) / HISTORY_MS) * (width - left - 4);
    const y = (v) => height - bottom - ((v || 0) / max) * (height - bottom - top);
    const nodes = [
      svgNode('line', { class: 'axis', x1: left, y1: height - bottom, x2: width, y2: height - bottom }),
      svgNode('text', { x: 2, y: top + 8 }, fmt(max, max < 10 ? 2 : 0)),
      svgNode('text', { x: 2, y: height - bottom }, '0'),
      svgNode('text', { x: left, y: height - 4 }, '−10 min'),
      svgNode('text', { x: width - 30, y: height - 4 }, 'now'),
    ];
    values.forEach((points, i) => {
      if (points.length < 2) return;
      const d = points.map(([t, v], j) => `${j ? 'L' : 'M'}${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      nodes.push(svgNode('path', { class: `series-${i}`, d: d.join('') }));
    });
    svg.replaceChildren(...nodes);
  }

  // One bar per bucket of a cumulative histogram, labelled by its upper bound.
  function histogramChart(svg, cumulative) {
    const { width, height, left, bottom, top } = CHART;
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const bars = cumulative.map(([le, n], i) => [le, n - (i ? cumulative[i - 1][1] : 0)]);
    const max = Math.max(1, ...bars.map(([, n]) => n));
    const slot = (width - left) / Math.max(bars.length, 1);
    const nodes = [svgNode('text', { x: 2, y: top + 8 }, fmt(max))];
    bars.forEach(([le, n], i) => {
      const h = (n / max) * (height - bottom - top);
      const x = left + i * slot;
      nodes.push(svgNode('rect', { class: 'bar', x: x + 2, y: height - bottom - h,
                                   width: slot - 4, height: h }));
      nodes.push(svgNode('text', { x: x + 2, y: height - 4 }, isFinite(le) ? `≤${le}` : 'more'));
    });
    svg.replaceChildren(...nodes);
  }

  // -- views --

  function renderOverview() {
    const now = history[history.length - 1];
    if (!now) return;
    $('#fig-queued').textContent = fmt(now.queued);
    $('#fig-processing').textContent = fmt(now.processing);
    $('#fig-completions').textContent = fmt(now.completions, 1);
    $('#fig-errors').textContent = fmt(now.errors, 1);
    $('#fig-p50').textContent = seconds(now.p50);
    $('#fig-p99').textContent = seconds(now.p99);
    $('#fig-accepted').textContent = fmt(now.accepted);
    $('#fig-results').textContent = fmt(now.results);
    lineChart($('#chart-depth'), [(s) => s.queued, (s) => s.processing]);
    lineChart($('#chart-rates'), [(s) => s.completions, (s) => s.errors]);
    lineChart($('#chart-latency'), [(s) => s.p50, (s) => s.p99]);
  }

  function renderRuns(runs) {
    fillRows('#runs-table', runs.map((run) => {
      const done = run.completed + run.failed + run.expired + run.cancelled;
      const tr = document.createElement('tr');
      tr.dataset.run = run.bos_batch_id;
      const bar = cell('');
      bar.append(progressBar(done / Math.max(done + run.active, 1)));
      tr.append(cell(run.bos_batch_id), bar, cell(run.active, 'num'), cell(run.completed, 'num'),
                cell(run.failed, run.failed ? 'num bad' : 'num'), cell(run.expired, 'num'),
                cell(run.cancelled, 'num'), cell(fmt(run.rate_per_second, 1), 'num'),
                cell(run.active ? duration(run.eta_seconds) : 'done'),
                cell(fmt(run.cost_estimate, 4), 'num'));
      return tr;
    }));
  }

  // Per actor, its recent samples: handled-message rate and whether the mailbox grows.
  const GROWTH_SAMPLES = 5;
  const actorHistory = new Map();
  const actorSort = { key: 'name', descending: false };

  function actorRows(actors, at) {
    return actors.map((a) => {
      const past = actorHistory.get(a.name) || [];
      past.push({ at, handled: a.messages_handled, mailbox: a.mailbox_size });
      if (past.length > GROWTH_SAMPLES) past.shift();
      actorHistory.set(a.name, past);
      const first = past[0];
      const span = (at - first.at) / 1000;
      const growing = past.length === GROWTH_SAMPLES && a.mailbox_size > first.mailbox
        && past.every((p, i) => !i || p.mailbox >= past[i - 1].mailbox);
      return { name: a.name, kind: a.kind, mailbox: a.mailbox_size,
               handled: a.messages_handled, growing,
               rate: span > 0 ? (a.messages_handled - first.handled) / span : 0,
               figures: Object.entries(a.figures).filter(([, v]) => v)
                 .map(([k, v]) => `${k}=${v}`).join(' ') };
    });
  }

  function compareActors(a, b) {
    const [x, y] = [a[actorSort.key], b[actorSort.key]];
    const order = typeof x === 'string' ? x.localeCompare(y) : (x ?? -1) - (y ?? -1);
    return (actorSort.descending ? -order : order) || a.name.localeCompare(b.name);
  }

  let lastActors = [];
  function renderActors() {
    const rows = [...lastActors].sort(compareActors).map((a) => {
      const tr = document.createElement('tr');
      if (a.growing) tr.className = 'growing';
      tr.append(cell(a.name), cell(a.kind), cell(a.mailbox, 'num'), cell(a.handled, 'num'),
                cell(fmt(a.rate, 1), 'num'), cell('not available yet'),
                cell(a.figures, 'figures-cell'));
      return tr;
    });
    fillRows('#actors-table', rows);
    for (const th of document.querySelectorAll('#actors-table th[data-key]'))
      th.classList.toggle('sorted', th.dataset.key === actorSort.key);
    $('#actors-table').dataset.sort = `${actorSort.key} ${actorSort.descending ? 'desc' : 'asc'}`;
  }

  // A header click sorts by its column: numbers largest first, names A to Z; again: reversed.
  function sortActorsBy(key) {
    const numeric = key !== 'name' && key !== 'kind';
    actorSort.descending = actorSort.key === key ? !actorSort.descending : numeric;
    actorSort.key = key;
    renderActors();
  }

  // The queue manager reports queued requests per provider as figures "queued_<provider>".
  function renderQueue(actors) {
    const manager = actors.find((a) => a.kind === 'queue_manager');
    const perProvider = Object.entries(manager ? manager.figures : {})
      .filter(([k]) => k.startsWith('queued_'));
    fillRows('#queue-table', perProvider.map(([k, v]) => {
      const tr = document.createElement('tr');
      tr.append(cell(k.slice('queued_'.length)), cell(fmt(v), 'num'));
      return tr;
    }));
  }

  function renderBundles(metrics) {
    histogramChart($('#chart-items'), buckets(metrics, 'llm_provider_serial_bundle_items_per_call'));
  }

  // A provider's HTTP calls by status code, summed over its endpoints.
  function callsByStatus(metrics, provider) {
    const result = new Map();
    for (const s of metrics.filter((x) => matches(x, 'llm_provider_http_calls_total', { provider })))
      result.set(s.labels.status_code, (result.get(s.labels.status_code) || 0) + s.value);
    return result;
  }

  function renderProviders(providers, metrics) {
    fillRows('#providers-table', providers.map((p) => {
      const filter = { provider: p.name };
      const p50 = quantile(0.5, buckets(metrics, 'llm_provider_response_duration_seconds', filter));
      const calls = [...callsByStatus(metrics, p.name)].map(([code, n]) => `${code}: ${n}`)
        .join(', ');
      const tr = document.createElement('tr');
      tr.append(cell(p.name), cell(p.configured ? 'yes' : 'no'),
                cell(p.circuit_state, p.circuit_state === 'closed' ? '' : 'bad'),
                cell(p.paused ? `paused: ${p.pause_reason}` : 'no', p.paused ? 'bad' : ''),
                cell(p.in_flight, 'num'), cell(seconds(p50)), cell(calls || '–'),
                cell(p.default_model));
      return tr;
    }));
  }

  // States of a job that can no longer be cancelled (runtime/batch_job_store.hpp).
  const ENDED_JOB_STATES = new Set(['ended', 'collected', 'failed']);

  function renderJobs(jobs) {
    fillRows('#jobs-table', jobs.map((job) => {
      const tr = document.createElement('tr');
      tr.dataset.job = job.job_id;
      const bar = cell('');
      bar.append(progressBar((job.succeeded + job.failed) / Math.max(job.item_count, 1)));
      const action = cell('');
      if (!ENDED_JOB_STATES.has(job.state) && !job.cancel_requested) {
        const button = document.createElement('button');
        button.textContent = 'Cancel';
        button.className = 'cancel';
        button.addEventListener('click', () => cancelJob(job.job_id));
        action.append(button);
      } else if (job.cancel_requested) {
        action.textContent = 'cancel requested';
      }
      tr.append(cell(job.job_id), cell(job.provider), cell(job.model),
                cell(job.state), bar, cell(`${job.succeeded + job.failed} / ${job.item_count}`),
                cell(job.last_error || ''), action);
      return tr;
    }));
  }

  async function cancelJob(id) {
    const message = $('#jobs-message');
    const response = await api(`/api/v1/batch-jobs/${encodeURIComponent(id)}/cancel`,
                               { method: 'POST' });
    const reason = response.status === 401 ? 'refused: this needs the admin token'
      : (await response.json().catch(() => ({}))).error?.message || `HTTP ${response.status}`;
    message.textContent = response.ok ? `cancel of ${id} requested` : `cancel of ${id}: ${reason}`;
    message.classList.toggle('bad', !response.ok);
  }

  // The table is rebuilt only when the settings or the filter change, so a row being
  // selected or read does not flicker once a second.
  let lastSettings = [];
  let shownConfig = '';
  function renderConfig(settings = lastSettings) {
    lastSettings = settings;
    const filter = $('#config-filter').value.trim().toLowerCase();
    const key = JSON.stringify([settings, filter]);
    if (key === shownConfig) return;
    shownConfig = key;
    const wanted = settings.filter((x) => !filter
      || [x.key, x.file_key, x.value].some((t) => t.toLowerCase().includes(filter)));
    fillRows('#config-table', wanted.map((x) => {
      const tr = document.createElement('tr');
      tr.dataset.key = x.key;
      tr.append(cell(x.key), cell(x.file_key), cell(x.value, x.secret ? 'secret' : ''));
      return tr;
    }));
  }

  // -- one snapshot in, every view out --

  function render(snapshot) {
    remember(snapshot);
    if (snapshot.metrics) renderOverview();
    if (snapshot.runs) renderRuns(snapshot.runs);
    if (snapshot.actors) {
      lastActors = actorRows(snapshot.actors, snapshot.at);
      renderActors();
      renderQueue(snapshot.actors);
    }
    if (snapshot.metrics) renderBundles(snapshot.metrics);
    if (snapshot.providers && snapshot.metrics)
      renderProviders(snapshot.providers, snapshot.metrics);
    if (snapshot.jobs) renderJobs(snapshot.jobs);
    if (snapshot.config) renderConfig(snapshot.config);
    const status = $('#status');
    const refused = snapshot.errors.some((e) => /HTTP 401$/.test(e));
    status.textContent = snapshot.errors.length
      ? (refused ? 'some views need the token: ' : 'not answered: ') + snapshot.errors.join('; ')
      : `updated ${new Date(snapshot.at).toLocaleTimeString()}`;
    status.classList.toggle('error', snapshot.errors.length > 0);
  }

  // -- navigation and controls --

  function showView(name) {
    for (const section of document.querySelectorAll('.view'))
      section.classList.toggle('active', section.id === `view-${name}`);
    for (const button of document.querySelectorAll('#views button'))
      button.classList.toggle('active', button.dataset.view === name);
  }

  function setUp() {
    for (const button of document.querySelectorAll('#views button'))
      button.addEventListener('click', () => { location.hash = button.dataset.view; });
    window.addEventListener('hashchange', () => showView(location.hash.slice(1) || 'overview'));
    showView(location.hash.slice(1) || 'overview');
    for (const th of document.querySelectorAll('#actors-table th[data-key]'))
      th.addEventListener('click', () => sortActorsBy(th.dataset.key));
    $('#config-filter').addEventListener('input', () => renderConfig());
    $('#token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $('#token').value);
      $('#token').value = '';
    });
    $('#token-clear').addEventListener('click', () => sessionStorage.removeItem(TOKEN_KEY));
    startPolling(render);
  }

  setUp();
})();
