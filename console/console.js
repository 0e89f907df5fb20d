// The lps web console (docs/console.md): plain JavaScript, no framework, no build step, no
// request to any host but the lps that served it. Live figures come from the inspection
// stream (/api/v1/inspect/stream), the last 10 minutes from /api/v1/inspect/history when the
// page loads; runs, batch jobs, the configuration and /metrics are read once a second.
// Charts are plain SVG.
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

  // -- the inspection stream --

  // One server-sent event block: its data (joined lines), and the reconnect delay if given.
  function parseEvent(block) {
    const data = [];
    let retry = null;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue; // a comment (the greeting, keep-alives)
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
      if (field === 'retry' && /^\d+$/.test(value)) retry = Number(value);
    }
    return { data: data.length ? data.join('\n') : null, retry };
  }

  // Reads the stream until it ends, calling `onEvent` with each snapshot.
  async function readStream(response, onEvent, onRetry) {
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, '\n');
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const event = parseEvent(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event.retry !== null) onRetry(event.retry);
        if (event.data !== null) onEvent(JSON.parse(event.data));
      }
    }
  }

  // EventSource cannot send an Authorization header, so the stream is read with fetch and its
  // events parsed here; like EventSource it reconnects by itself, after the stream's `retry:`
  // delay. `onState` hears 'connecting', 'live' and 'disconnected' (with the reason).
  function openStream(onEvent, onState) {
    let retryMs = 1000;
    let controller = null;
    let timer = null;
    async function connect() {
      const mine = new AbortController();
      controller = mine;
      onState('connecting');
      let reason = 'lps ended the stream';
      try {
        const response = await api('/api/v1/inspect/stream', { signal: mine.signal });
        if (response.ok) {
          onState('live');
          await readStream(response, onEvent, (ms) => { retryMs = ms; });
        } else {
          reason = response.status === 401 ? 'it needs the admin token' : `HTTP ${response.status}`;
        }
      } catch (error) {
        reason = error.message;
      }
      if (mine.signal.aborted) return; // replaced by a new connection
      onState('disconnected', reason, retryMs);
      timer = setTimeout(connect, retryMs);
    }
    connect();
    // A new token: drop the connection and open one with it at once.
    return () => {
      clearTimeout(timer);
      if (controller) controller.abort();
      connect();
    };
  }

  // -- the routes read once a second --

  const POLL_INTERVAL_MS = 1000;
  const SOURCES = {
    metrics: ['/metrics', (r) => r.text().then(parsePrometheus)],
    runs: ['/api/v1/runs', (r) => r.json().then((b) => b.runs)],
    jobs: ['/api/v1/inspect/jobs', (r) => r.json().then((b) => b.jobs)],
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
  // The queue manager's figures of each snapshot (stream and history): depth and totals.
  const history = [];
  // Time to result of each snapshot (stream and history): the metrics actor's histogram.
  const latencyHistory = [];

  function keepTenMinutes(samples, newest) {
    samples.push(newest);
    while (samples.length && samples[0].at < newest.at - HISTORY_MS) samples.shift();
  }

  // The oldest sample within `ms` of `now` (the base of rates and window percentiles).
  const windowStart = (samples, now, ms) => samples.find((s) => s.at >= now.at - ms) || now;

  // The actor of `kind` whose figures are queue-wide: in a cluster the leader's singleton
  // (fact role=leader; the node's own queue manager only stores requests for the leader),
  // otherwise the node's only one.
  function queueWide(snapshot, kind) {
    const actors = (snapshot.actors || []).filter((a) => a.kind === kind);
    return actors.find((a) => a.facts?.role === 'leader') || actors[0];
  }

  // The queue manager's figures in a snapshot, or null when it did not answer.
  function queueSample(snapshot) {
    const manager = queueWide(snapshot, 'queue_manager');
    if (!manager || !manager.responsive) return null;
    const f = (key) => manager.figures[key] || 0;
    return {
      at: Date.parse(snapshot.at),
      queued: f('queued') + f('retry_waiting'),
      processing: f('processing'),
      accepted: f('accepted_total'),
      successes: f('completed_total'),
      results: f('completed_total') + f('failed_total') + f('expired_total'),
    };
  }

  function rememberQueue(snapshot) {
    const now = queueSample(snapshot);
    if (!now) return;
    // A restarted lps counts from 0 again: its samples start a new history.
    const last = history[history.length - 1];
    if (last && now.results < last.results) history.length = 0;
    keepTenMinutes(history, now);
    const base = windowStart(history, now, RATE_WINDOW_MS);
    const span = (now.at - base.at) / 1000;
    const rate = (f) => (span > 0 ? Math.max(f(now) - f(base), 0) / span : 0);
    now.completions = rate((s) => s.successes);
    now.errors = rate((s) => s.results - s.successes);
  }

  // The metrics actor's time-to-result histogram in a snapshot ("time_to_result_le_<bound>":
  // cumulative counts, as /metrics has them), or null when it did not answer.
  function timeToResultBuckets(snapshot) {
    const metrics = queueWide(snapshot, 'metrics');
    if (!metrics || !metrics.responsive) return null;
    const prefix = 'time_to_result_le_';
    const wait = Object.entries(metrics.figures || {})
      .filter(([key]) => key.startsWith(prefix))
      .map(([key, n]) => [promNumber(key.slice(prefix.length)), n])
      .sort((a, b) => a[0] - b[0]);
    return wait.length ? wait : null;
  }

  const observations = (wait) => (wait.length ? wait[wait.length - 1][1] : 0);

  function rememberLatency(snapshot) {
    const wait = timeToResultBuckets(snapshot);
    if (!wait) return;
    const now = { at: Date.parse(snapshot.at), wait };
    // A restarted lps counts from 0 again: its samples start a new history.
    const last = latencyHistory[latencyHistory.length - 1];
    if (last && observations(now.wait) < observations(last.wait)) latencyHistory.length = 0;
    keepTenMinutes(latencyHistory, now);
    const window = bucketDelta(now.wait, windowStart(latencyHistory, now, RATE_WINDOW_MS).wait);
    now.p50 = quantile(0.5, window);
    now.p99 = quantile(0.99, window);
  }

  // -- formatting and DOM helpers --

  const $ = (selector) => document.querySelector(selector);
  const fmt = (x, digits = 0) =>
    x === null || x === undefined || Number.isNaN(x) ? '–' : Number(x).toFixed(digits);
  const seconds = (s) => (s === null || s === undefined ? '–'
    : s < 1 ? `${(s * 1000).toFixed(0)} ms` : `${s.toFixed(2)} s`);
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

  function row(cells, attributes = {}) {
    const tr = document.createElement('tr');
    for (const [k, v] of Object.entries(attributes)) tr.dataset[k] = v;
    tr.append(...cells);
    return tr;
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
    const label = document.createElement('span');
    label.textContent = `${percent} %`;
    outer.append(inner, label);
    return outer;
  }

  function barCell(fraction) {
    const td = cell('');
    td.append(progressBar(fraction));
    return td;
  }

  function fillRows(table, rows) {
    $(`${table} tbody`).replaceChildren(...rows);
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

  // Lines over the last 10 minutes of `samples`; `series` are functions of a sample. The
  // chart says how many samples it drew and its largest value (data-samples, data-max).
  function lineChart(svg, samples, series) {
    const { width, height, left, bottom, top } = CHART;
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const end = samples.length ? samples[samples.length - 1].at : Date.now();
    const values = series.map((f) => samples.map((s) => [s.at, f(s)]));
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
    svg.dataset.samples = String(samples.length);
    svg.dataset.max = String(max > 1e-9 ? max : 0);
  }

  // One bar per bundle size: `bars` are [label, count].
  function barChart(svg, bars) {
    const { width, height, left, bottom, top } = CHART;
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    const max = Math.max(1, ...bars.map(([, n]) => n));
    const slot = (width - left) / Math.max(bars.length, 1);
    const nodes = [svgNode('text', { x: 2, y: top + 8 }, fmt(max))];
    bars.forEach(([label, n], i) => {
      const h = (n / max) * (height - bottom - top);
      const x = left + i * slot;
      nodes.push(svgNode('rect', { class: 'bar', x: x + 2, y: height - bottom - h,
                                   width: Math.max(slot - 4, 1), height: h }));
      nodes.push(svgNode('text', { x: x + 2, y: height - 4 }, label));
    });
    svg.replaceChildren(...nodes);
  }

  // -- views fed by the stream --

  function renderOverview() {
    const now = history[history.length - 1];
    const latency = latencyHistory[latencyHistory.length - 1];
    if (now) {
      $('#fig-queued').textContent = fmt(now.queued);
      $('#fig-processing').textContent = fmt(now.processing);
      $('#fig-completions').textContent = fmt(now.completions, 1);
      $('#fig-errors').textContent = fmt(now.errors, 1);
      $('#fig-accepted').textContent = fmt(now.accepted);
      $('#fig-results').textContent = fmt(now.results);
    }
    if (latency) {
      $('#fig-p50').textContent = seconds(latency.p50);
      $('#fig-p99').textContent = seconds(latency.p99);
    }
    lineChart($('#chart-depth'), history, [(s) => s.queued, (s) => s.processing]);
    lineChart($('#chart-rates'), history, [(s) => s.completions, (s) => s.errors]);
    lineChart($('#chart-latency'), latencyHistory, [(s) => s.p50, (s) => s.p99]);
  }

  // Per actor, its recent samples: whether the mailbox grows.
  const GROWTH_SAMPLES = 5;
  const actorHistory = new Map();
  const actorSort = { key: 'name', descending: false };

  const actorKey = (a) => `${a.node}/${a.name}`;

  function rememberActors(actors) {
    for (const a of actors) {
      const past = actorHistory.get(actorKey(a)) || [];
      past.push(a.mailbox_size);
      if (past.length > GROWTH_SAMPLES) past.shift();
      actorHistory.set(actorKey(a), past);
    }
  }

  const growing = (past) => past.length === GROWTH_SAMPLES && past[past.length - 1] > past[0]
    && past.every((m, i) => !i || m >= past[i - 1]);

  function actorRows(actors) {
    return actors.map((a) => ({
      name: a.name, node: a.node, kind: a.kind, responsive: a.responsive, mailbox: a.mailbox_size,
      handled: a.messages_handled, rate: a.handled_per_second,
      p50: a.processing_ms?.p50, p90: a.processing_ms?.p90, p99: a.processing_ms?.p99,
      lastError: a.last_error || '', growing: growing(actorHistory.get(actorKey(a)) || []),
      figures: Object.entries(a.figures || {}).filter(([, v]) => v)
        .map(([k, v]) => `${k}=${v}`).join(' '),
    }));
  }

  function compareActors(a, b) {
    const [x, y] = [a[actorSort.key], b[actorSort.key]];
    const order = typeof x === 'string' ? x.localeCompare(y) : (x ?? -1) - (y ?? -1);
    return (actorSort.descending ? -order : order) || a.name.localeCompare(b.name);
  }

  let lastActors = [];
  function renderActors() {
    const ms = (x) => (x === undefined ? '–' : fmt(x, x < 1 ? 3 : 1));
    fillRows('#actors-table', [...lastActors].sort(compareActors).map((a) => {
      const tr = row([cell(a.name), cell(a.responsive ? a.kind : `${a.kind} (unresponsive)`),
                      cell(a.mailbox, 'num'), cell(a.handled, 'num'), cell(fmt(a.rate, 1), 'num'),
                      cell(ms(a.p50), 'num'), cell(ms(a.p90), 'num'), cell(ms(a.p99), 'num'),
                      cell(a.lastError, a.lastError ? 'bad' : ''), cell(a.figures, 'figures-cell'),
                      cell(a.node || '')]);
      tr.classList.toggle('growing', a.growing);
      tr.classList.toggle('unresponsive', !a.responsive);
      return tr;
    }));
    for (const th of document.querySelectorAll('#actors-table th[data-key]'))
      th.classList.toggle('sorted', th.dataset.key === actorSort.key);
    $('#actors-table').dataset.sort = `${actorSort.key} ${actorSort.descending ? 'desc' : 'asc'}`;
  }

  // A header click sorts by its column: numbers largest first, names A to Z; again: reversed.
  function sortActorsBy(key) {
    const numeric = key !== 'name' && key !== 'kind' && key !== 'node';
    actorSort.descending = actorSort.key === key ? !actorSort.descending : numeric;
    actorSort.key = key;
    renderActors();
  }

  function renderQueue(rows) {
    fillRows('#queue-table', rows.map((r) => row(
      [cell(r.provider), cell(r.model || '(not read yet)'), cell(fmt(r.waiting), 'num'),
       cell(duration(r.oldest_age_seconds), 'num')],
      { provider: r.provider, model: r.model })));
  }

  function renderBundles(recent, itemsPerCall) {
    barChart($('#chart-items'), [...itemsPerCall].sort((a, b) => a.items - b.items)
      .map((x) => [String(x.items), x.calls]));
    fillRows('#bundles-table', recent.map((b) => row(
      [cell(b.bundle_id), cell(b.provider), cell(b.model), cell(b.items, 'num'),
       cell(b.succeeded, 'num'), cell(b.failed, b.failed ? 'num bad' : 'num'),
       cell(b.outcome, b.outcome === 'ok' ? '' : 'bad'), cell(seconds(b.duration_ms / 1000), 'num')],
      { bundle: b.bundle_id })));
  }

  // A provider's HTTP calls by status code, summed over its endpoints.
  function callsByStatus(metrics, provider) {
    const result = new Map();
    for (const s of metrics.filter((x) => matches(x, 'llm_provider_http_calls_total', { provider })))
      result.set(s.labels.status_code, (result.get(s.labels.status_code) || 0) + s.value);
    return [...result].map(([code, n]) => `${code}: ${n}`).join(', ') || '–';
  }

  function errorsByCode(p) {
    return Object.entries(p).filter(([k, v]) => k.startsWith('errors_') && v)
      .map(([k, v]) => `${k.slice('errors_'.length)}: ${v}`).join(', ') || '–';
  }

  let lastProviders = [];
  let lastMetrics = [];
  function renderProviders() {
    fillRows('#providers-table', lastProviders.map((p) => {
      const p50 = quantile(0.5, buckets(lastMetrics, 'llm_provider_response_duration_seconds',
                                        { provider: p.provider }));
      const headroom = p.rate_limit_requests_available;
      return row(
        [cell(p.provider), cell(p.circuit_state, p.circuit_state === 'closed' ? '' : 'bad'),
         cell(p.paused_by ? `paused: ${p.paused_by}` : 'no', p.paused_by ? 'bad' : ''),
         cell(`${fmt(p.inflight_bundles)} / ${fmt(p.max_inflight_bundles)}`, 'num'),
         cell(headroom === undefined ? 'unlimited' : fmt(headroom), 'num'),
         cell(seconds((p.blocked_ms || 0) / 1000), 'num'), cell(fmt(p.breaker_opened_total), 'num'),
         cell(p.latency_ms_mean === undefined ? '–' : seconds(p.latency_ms_mean / 1000), 'num'),
         cell(seconds(p50)), cell(errorsByCode(p)), cell(callsByStatus(lastMetrics, p.provider))],
        { provider: p.provider });
    }));
  }

  // Every node of the cluster (this node alone outside a cluster), each with its own calls in
  // flight and actors as its inspector last answered this node's (– while none did).
  function renderNodes(nodes, cluster) {
    $('#nodes-cluster').textContent = !cluster
      ? 'This lps runs as a single node (CLUSTER_ENABLED=false): it lists itself.'
      : `Cluster: leader ${cluster.leader || 'none (no live lease)'}, epoch ${cluster.epoch}, `
        + `lease ${fmt(cluster.lease_seconds, 1)} s`
        + (cluster.error ? `; the last read of the registry failed: ${cluster.error}` : '');
    $('#nodes-cluster').classList.toggle('bad', Boolean(cluster && (cluster.error || !cluster.leader)));
    const known = (x) => (x === null || x === undefined ? '–' : String(x));
    offerNodes(nodes.map((n) => n.name));
    fillRows('#nodes-table', nodes.map((n) => row(
      [nodeLink(n.name), cell(known(n.address)), cell(n.state, n.state === 'up' ? '' : 'bad'),
       cell(n.leader === null ? '–' : n.leader ? 'yes' : 'no'), cell(n.self ? 'yes' : 'no'),
       cell(n.heartbeat_age_seconds === null ? '–' : `${fmt(n.heartbeat_age_seconds, 1)} s ago`,
            'num'),
       cell(known(n.version)), cell(known(n.in_flight_calls), 'num'), cell(known(n.actors), 'num'),
       cell(known(n.unresponsive_actors), n.unresponsive_actors ? 'num bad' : 'num'),
       cell(figuresAge(n), n.responsive === false ? 'bad' : '')],
      { node: n.name })));
  }

  // Whether a node's figures are this second's: its inspector answered within 500 ms, and how
  // old its newest snapshot was; or why it did not answer, and how old the figures shown are.
  function figuresAge(n) {
    const age = n.figures_age_seconds === null || n.figures_age_seconds === undefined
      ? null : `figures ${fmt(n.figures_age_seconds, 1)} s old`;
    if (n.responsive === true) return `answered, ${age || 'no snapshot yet'}`;
    if (n.responsive === false) return n.error + (age ? `, ${age}` : '');
    return '–';
  }

  // A node's name in the nodes view: a link to the actors view showing that node's actors.
  function nodeLink(name) {
    const td = cell('');
    const a = document.createElement('a');
    a.href = '#actors';
    a.textContent = name;
    a.dataset.node = name;
    a.addEventListener('click', () => { chooseActorsNode(name); });
    td.append(a);
    return td;
  }

  // The views fed by the stream are of the node serving the page: each says which.
  function showNodeName(name) {
    if (!name) return;
    for (const label of document.querySelectorAll('.shown-node')) label.textContent = name;
  }

  // The queue, bundles and providers tables and the overview's queue figures come from the
  // leader's singletons in a cluster: the views name the node that answered.
  function showTablesNode(snapshot) {
    const failed = !snapshot.tables_node && Boolean(snapshot.tables_error);
    const text = failed ? `none: ${snapshot.tables_error}` : snapshot.tables_node || snapshot.node;
    for (const label of document.querySelectorAll('.tables-node')) {
      label.textContent = text;
      label.classList.toggle('bad', failed);
    }
  }

  // -- the actors of other nodes: ?node=all or ?node=NAME, read once a second while chosen --

  let actorsNode = '';
  let actorsTimer = null;

  // The node filter offers every node of the cluster (kept when it is already chosen).
  function offerNodes(names) {
    const select = $('#actors-node');
    const offered = [...select.options].slice(2).map((o) => o.value);
    if (JSON.stringify(offered) === JSON.stringify(names)) return;
    for (const o of [...select.options].slice(2)) o.remove();
    for (const name of names) select.append(new Option(name, name));
    select.value = actorsNode;
  }

  function chooseActorsNode(value) {
    actorsNode = value;
    $('#actors-node').value = value;
    clearTimeout(actorsTimer);
    $('#actors-nodes').textContent = '';
    if (value) pollNodeActors();
  }

  async function pollNodeActors() {
    const wanted = actorsNode;
    let body = null;
    try {
      body = await read(`/api/v1/inspect/actors?node=${encodeURIComponent(wanted)}`,
                        (r) => r.json());
    } catch (error) {
      $('#actors-nodes').textContent = error.message;
    }
    if (wanted !== actorsNode) return; // the filter changed meanwhile
    if (body) {
      rememberActors(body.actors);
      lastActors = actorRows(body.actors);
      renderActors();
      const silent = body.nodes.filter((n) => !n.responsive);
      const label = $('#actors-nodes');
      label.textContent = silent.length
        ? 'unresponsive: ' + silent.map((n) => `${n.name} (${n.error})`).join(', ')
        : `${body.nodes.length} node(s) answered`;
      label.classList.toggle('bad', silent.length > 0);
    }
    actorsTimer = setTimeout(pollNodeActors, POLL_INTERVAL_MS);
  }

  // The last snapshot shown, so one delivered twice (history, then the stream) counts once.
  let lastSnapshotAt = 0;

  function onSnapshot(snapshot, live) {
    const at = Date.parse(snapshot.at);
    if (at <= lastSnapshotAt) return;
    lastSnapshotAt = at;
    rememberQueue(snapshot);
    rememberLatency(snapshot);
    if (!actorsNode) rememberActors(snapshot.actors || []);
    showNodeName(snapshot.node);
    if (!live) return; // history has actors alone: the tables wait for the stream
    if (!actorsNode) { // another node's actors are read by pollNodeActors
      lastActors = actorRows(snapshot.actors || []);
      renderActors();
    }
    showTablesNode(snapshot);
    renderQueue(snapshot.queue || []);
    renderBundles(snapshot.recent_bundles || [], snapshot.items_per_call || []);
    lastProviders = snapshot.providers || [];
    renderProviders();
    renderNodes(snapshot.nodes || [], snapshot.cluster || null);
    renderOverview();
  }

  // The last 10 minutes lps kept, so the charts survive a reload.
  async function loadHistory() {
    try {
      const body = await read('/api/v1/inspect/history?seconds=600', (r) => r.json());
      for (const snapshot of body.snapshots) onSnapshot(snapshot, false);
      renderOverview();
    } catch (error) {
      $('#stream-state').title = `history: ${error.message}`;
    }
  }

  function showStreamState(state, reason, retryMs) {
    const badge = $('#stream-state');
    badge.dataset.state = state;
    badge.textContent = state === 'live' ? 'stream: live'
      : state === 'connecting' ? 'stream: connecting…'
      : `stream: disconnected (${reason}), reconnecting in ${fmt(retryMs / 1000, 1)} s`;
  }

  // -- views fed by polling --

  // Runs not finished first, then the others; each with done / all and a progress bar.
  function runCells(run) {
    const done = run.completed + run.failed + run.expired + run.cancelled;
    const all = done + run.active;
    return { done, all, bar: () => barCell(done / Math.max(all, 1)),
             eta: run.active ? duration(run.eta_seconds) : 'done' };
  }

  function renderRuns(runs) {
    fillRows('#runs-table', runs.map((run) => {
      const r = runCells(run);
      return row([cell(run.bos_batch_id), r.bar(), cell(`${r.done} / ${r.all}`, 'num'),
                  cell(run.active, 'num'), cell(run.completed, 'num'),
                  cell(run.failed, run.failed ? 'num bad' : 'num'), cell(run.expired, 'num'),
                  cell(run.cancelled, 'num'), cell(fmt(run.rate_per_second, 1), 'num'),
                  cell(r.eta), cell(fmt(run.cost_estimate, 4), 'num')], { run: run.bos_batch_id });
    }));
    const shown = [...runs].sort((a, b) => (b.active > 0) - (a.active > 0)).slice(0, 10);
    fillRows('#overview-runs', shown.map((run) => {
      const r = runCells(run);
      return row([cell(run.bos_batch_id), r.bar(), cell(`${r.done} / ${r.all}`, 'num'),
                  cell(run.failed, run.failed ? 'num bad' : 'num'),
                  cell(fmt(run.rate_per_second, 1), 'num'), cell(r.eta)], { run: run.bos_batch_id });
    }));
  }

  // States of a job that can no longer be cancelled (runtime/batch_job_store.hpp).
  const ENDED_JOB_STATES = new Set(['ended', 'collected', 'failed']);

  function renderJobs(jobs) {
    fillRows('#jobs-table', jobs.map((job) => {
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
      return row([cell(job.job_id), cell(job.provider), cell(job.model), cell(job.state),
                  barCell(job.progress), cell(`${job.done} / ${job.item_count}`),
                  cell(job.last_error || ''), action], { job: job.job_id });
    }));
    fillRows('#overview-jobs', jobs.filter((job) => !ENDED_JOB_STATES.has(job.state)).map((job) =>
      row([cell(job.job_id), cell(job.provider), cell(job.state), barCell(job.progress),
           cell(`${job.done} / ${job.item_count}`, 'num')], { job: job.job_id })));
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
    fillRows('#config-table', wanted.map((x) =>
      row([cell(x.key), cell(x.file_key), cell(x.value, x.secret ? 'secret' : '')], { key: x.key })));
  }

  function onPoll(snapshot) {
    if (snapshot.metrics) {
      lastMetrics = snapshot.metrics;
      renderProviders();
    }
    if (snapshot.runs) renderRuns(snapshot.runs);
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

  async function setUp() {
    for (const button of document.querySelectorAll('#views button'))
      button.addEventListener('click', () => { location.hash = button.dataset.view; });
    window.addEventListener('hashchange', () => showView(location.hash.slice(1) || 'overview'));
    showView(location.hash.slice(1) || 'overview');
    for (const th of document.querySelectorAll('#actors-table th[data-key]'))
      th.addEventListener('click', () => sortActorsBy(th.dataset.key));
    $('#config-filter').addEventListener('input', () => renderConfig());
    $('#actors-node').addEventListener('change', (event) => chooseActorsNode(event.target.value));
    let reconnect = () => {}; // until the stream is open
    $('#token-form').addEventListener('submit', (event) => {
      event.preventDefault();
      sessionStorage.setItem(TOKEN_KEY, $('#token').value);
      $('#token').value = '';
      if (!history.length) loadHistory();
      reconnect();
    });
    $('#token-clear').addEventListener('click', () => {
      sessionStorage.removeItem(TOKEN_KEY);
      reconnect();
    });
    startPolling(onPoll);
    // History first: a stream event it also holds is then skipped, not drawn twice.
    await loadHistory();
    reconnect = openStream((snapshot) => onSnapshot(snapshot, true), showStreamState);
  }

  setUp();
})();
