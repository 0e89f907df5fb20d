// The web console in a real browser (docs/console.md): Debian's chromium, headless, driven by
// playwright-core (tools/browser). Starts lps (mock provider for a run; OpenAI's batch API on
// the project's mock provider server for a batch job that stays open) on 127.0.0.1 with an
// ADMIN_TOKEN and an API_KEYS_FILE (the page holds the admin token alone; the test submits
// with a client key), opens /console and checks what an operator sees: the views fed by the
// inspection stream, the history kept across a reload, the polled runs and jobs. Screenshots
// of every view go to the artifacts folder.
//
// node tests/browser/console_test.mjs --lps=BIN --mock-provider=BIN --artifacts=DIR
// Exit code 0 when every check passed; any failure (chromium missing included) exits 1.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const require = createRequire(join(here, '../../tools/browser/package.json'));
const { chromium } = require('playwright-core');

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const CHROMIUM = args.chromium || '/usr/bin/chromium';
const TOKEN = 'console-test-admin-token';
// The client key the test submits with (API_KEYS_FILE): the page never has it.
const CLIENT_KEY = 'console-test-client-key-81d3';
// A secret lps is started with: the Configuration view must show it masked, never in clear.
const OPENAI_KEY = 'sk-console-test-openai-5f2c91';
const RUN = 'browser-run';
const RUN_SIZE = 300;
const MOVE_LIMIT_MS = 3000; // the issue: the overview and the run's bar move within 3 s

const started = Date.now();
const children = [];
let failures = 0;

function check(condition, what) {
  console.log(`${condition ? 'ok' : 'FAILED'}: ${what}`);
  if (!condition) failures += 1;
}

// Starts a server process and resolves with the URL it prints once it listens.
function startServer(binary, argv, env, pattern) {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, argv, { env: { ...process.env, ...env } });
    children.push(child);
    let out = '';
    const onData = (data) => {
      out += data;
      const m = pattern.exec(out);
      if (m) resolve(m[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (data) => { out += data; });
    child.on('exit', (code) => reject(new Error(`${binary} exited (${code}): ${out}`)));
  });
}

// SIGTERM, and SIGKILL when the process has not exited 10 s later.
function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10000);
    child.on('exit', () => { clearTimeout(kill); resolve(); });
    child.kill('SIGTERM');
  });
}

async function call(base, path, { body, method = body ? 'POST' : 'GET', token = TOKEN } = {}) {
  const response = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

// Polls `probe` until it returns a truthy value; the value, or null after `limitMs`.
async function until(probe, limitMs) {
  const end = Date.now() + limitMs;
  for (;;) {
    const value = await probe();
    if (value || Date.now() > end) return value || null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const comparison = (i, run = RUN, extra = {}) => ({
  user_prompt: `Which essay is better?\n\n**Essay A (ID: a${i}):** one\n\n**Essay B (ID: b${i}):** two`,
  metadata: { essay_a_id: `a${i}`, essay_b_id: `b${i}`, bos_batch_id: run },
  ...extra,
});

async function startStack(dataDir) {
  const keysFile = join(dataDir, 'keys.txt');
  writeFileSync(keysFile, `browser-test ${createHash('sha256').update(CLIENT_KEY).digest('hex')}\n`);
  const mock = await startServer(args['mock-provider'],
    ['--port=0', '--batch-processing-ms=600000', `--api-key=${OPENAI_KEY}`], {},
    /listening on (http:\/\/\S+)/);
  const lps = await startServer(args.lps, [
    '--http-port=0', `--data-dir=${join(dataDir, 'data')}`, `--admin-token=${TOKEN}`,
    `--api-keys-file=${keysFile}`,
    '--queue-processing-mode=batch_api', '--openai-batch-api-mode=opportunistic',
    '--batch-api-min-items=1', '--batch-api-poll-interval-seconds=1',
    `--openai-base-url=${mock}/v1`, '--mock-latency-ms=20',
  ], { OPENAI_API_KEY: OPENAI_KEY }, /lps listening on (http:\/\/\S+)/);
  return lps;
}

// One batch job at the mock provider, kept open (its items take 10 minutes there).
async function openBatchJob(base) {
  const submitted = await call(base, '/api/v1/comparison', {
    body: comparison('job', 'batch-job-run', { llm_config_overrides: { provider_override: 'openai' } }),
    token: CLIENT_KEY,
  });
  check(submitted.status === 202, `a request for OpenAI's batch API is accepted (${submitted.status})`);
  return until(async () => {
    const jobs = (await call(base, '/api/v1/batch-jobs')).body.jobs;
    return jobs.find((j) => j.state === 'submitted');
  }, 20000);
}

// Watches everything the page does: console errors, failed requests, hosts it talks to.
function watch(page, origin) {
  const seen = { errors: [], failed: [], foreign: [] };
  page.on('console', (m) => { if (m.type() === 'error') seen.errors.push(m.text()); });
  page.on('pageerror', (e) => seen.errors.push(String(e)));
  page.on('requestfailed', (r) => seen.failed.push(`${r.url()} ${r.failure()?.errorText}`));
  page.on('request', (r) => { if (new URL(r.url()).origin !== origin) seen.foreign.push(r.url()); });
  return seen;
}

const figure = (page, id) => page.textContent(`#${id}`).then((t) => Number(t) || 0);
const runProgress = (page) => page.getAttribute(`tr[data-run="${RUN}"] [role=progressbar]`,
                                                'aria-valuenow', { timeout: 0 }).catch(() => null);

async function checkOverviewAndRun(page, base) {
  const results = await figure(page, 'fig-results');
  check(results === 0, 'the overview starts at 0 results');
  const sent = Date.now();
  const bulk = await call(base, '/api/v1/comparisons', {
    body: { requests: Array.from({ length: RUN_SIZE }, (_, i) => comparison(i)) },
    token: CLIENT_KEY,
  });
  check(bulk.status === 202, `${RUN_SIZE} comparisons accepted in one bulk request`);
  const moved = await until(async () => (await figure(page, 'fig-results')) > 0, 10000);
  const overviewMs = Date.now() - sent;
  check(moved && overviewMs <= MOVE_LIMIT_MS, `the overview moved ${overviewMs} ms after submission`);
  await page.click('button[data-view=runs]');
  const barMoved = await until(async () => Number(await runProgress(page)) > 0, 10000);
  const barMs = Date.now() - sent;
  check(barMoved && barMs <= MOVE_LIMIT_MS, `the run's progress bar moved ${barMs} ms after submission`);
  const full = await until(async () => (await runProgress(page)) === '100', 60000);
  check(full, `the run's progress bar reached 100 % (${Date.now() - sent} ms after submission)`);
  const doneText = await page.textContent(`#runs-table tr[data-run="${RUN}"] td:nth-child(3)`);
  check(doneText === `${RUN_SIZE} / ${RUN_SIZE}`, `the run shows ${doneText} done`);
  await page.click('button[data-view=overview]');
  const overviewBar = await until(() => page.getAttribute(
    `#overview-runs tr[data-run="${RUN}"] [role=progressbar]`, 'aria-valuenow', { timeout: 0 })
    .then((v) => (v === '100' ? v : null)).catch(() => null), 5000);
  check(overviewBar === '100', `the overview lists the run at 100 % (${overviewBar})`);
  await until(async () => (await figure(page, 'fig-completions')) > 0, 5000);
  for (const id of ['fig-results', 'fig-accepted', 'fig-completions'])
    check((await figure(page, id)) > 0, `overview figure ${id} is not 0 (${await page.textContent('#' + id)})`);
  check(await page.$$eval('#chart-depth path, #chart-rates path', (p) => p.length) >= 2,
        'the overview charts draw lines');
}

// Reads one column of the actors table, as numbers.
const column = (page, index) => page.$$eval('#actors-table tbody tr',
  (rows, i) => rows.map((r) => Number(r.children[i].textContent)), index);
const ordered = (xs, descending) => xs.every((x, i) => !i || (descending ? xs[i - 1] >= x : xs[i - 1] <= x));

async function checkActors(page, base) {
  await page.click('button[data-view=actors]');
  const api = (await call(base, '/api/v1/inspect')).body.actors.map((a) => `${a.name} ${a.kind}`).sort();
  const shown = (await page.$$eval('#actors-table tbody tr',
    (rows) => rows.map((r) => `${r.children[0].textContent} ${r.children[1].textContent}`))).sort();
  check(JSON.stringify(shown) === JSON.stringify(api),
        `the actors table lists the actors of /api/v1/inspect (${shown.length})`);
  await page.click('#actors-table th[data-key=mailbox]');
  check(await page.getAttribute('#actors-table', 'data-sort') === 'mailbox desc',
        'a click on Mailbox sorts by mailbox, largest first');
  check(ordered(await column(page, 2), true), 'the mailbox column is in descending order');
  // Mailboxes are mostly 0 at rest, so the order is proven on a column whose values differ.
  await page.click('#actors-table th[data-key=handled]');
  const handled = await column(page, 3);
  check(new Set(handled).size > 2 && ordered(handled, true), `sorted by messages handled: ${handled}`);
  await page.click('#actors-table th[data-key=handled]');
  check(ordered(await column(page, 3), false), 'a second click reverses the order');
  // The node filter, all nodes: the actors of ?node=all (this node alone outside a cluster),
  // each with its node in the last column.
  await page.selectOption('#actors-node', 'all');
  const all = (await call(base, '/api/v1/inspect?node=all')).body;
  const nodesShown = await until(async () => {
    const rows = await page.$$eval('#actors-table tbody tr',
      (rs) => rs.map((r) => r.lastElementChild.textContent));
    return rows.length === all.actors.length
      && /1 node\(s\) answered/.test(await page.textContent('#actors-nodes')) ? rows : null;
  }, 5000);
  check(nodesShown && nodesShown.every((n) => n === all.node),
        `with all nodes the table lists ?node=all's actors with their node (${nodesShown})`);
  await page.selectOption('#actors-node', '');
}

// At rest (the run is over) the stream's providers, bundles and nodes are what the
// inspection views answer.
async function checkProviders(page, base) {
  await page.click('button[data-view=providers]');
  const api = (await call(base, '/api/v1/inspect/providers')).body.providers
    .map((p) => `${p.provider} ${p.circuit_state} ${p.inflight_bundles} / ${p.max_inflight_bundles}`)
    .sort();
  const shown = await until(async () => {
    const rows = (await page.$$eval('#providers-table tbody tr', (trs) => trs.map((r) =>
      `${r.children[0].textContent} ${r.children[1].textContent} ${r.children[3].textContent}`)))
      .sort();
    return JSON.stringify(rows) === JSON.stringify(api) ? rows : null;
  }, 5000);
  check(shown, `the providers table shows breakers and in flight / limit of /api/v1/inspect/providers: ${api}`);
}

async function checkBundlesAndNodes(page, base) {
  await page.click('button[data-view=bundles]');
  const { recent_bundles: recent, items_per_call: sizes } =
    (await call(base, '/api/v1/inspect/bundles')).body;
  check(recent.length > 0, `lps lists ${recent.length} recent bundles`);
  const ids = await until(async () => {
    const shown = await page.$$eval('#bundles-table tbody tr', (rows) => rows.map((r) => r.dataset.bundle));
    return shown.length === recent.length && shown[0] === recent[0].bundle_id ? shown : null;
  }, 5000);
  check(ids, `the bundles table lists the ${recent.length} recent bundles, newest first`);
  const bars = await page.$$eval('#chart-items rect', (r) => r.length);
  check(bars === sizes.length, `the items-per-call chart has a bar per bundle size (${bars})`);
  await page.click('button[data-view=nodes]');
  const body = (await call(base, '/api/v1/inspect/nodes')).body;
  const node = body.nodes[0];
  check(body.cluster === null && body.nodes.length === 1 && node.self && node.version,
        `outside a cluster /api/v1/inspect/nodes lists this node alone: ${JSON.stringify(body)}`);
  const expected = [node.name, '–', 'up', '–', 'yes', '–', node.version, String(node.in_flight_calls),
                    String(node.actors), '0', 'answered, figures 0.0 s old'].join('|');
  const shown = await until(async () => {
    const rows = (await cells(page, '#nodes-table')).map((r) => r.join('|'));
    return rows.length === 1 && rows[0] === expected ? rows : null;
  }, 5000);
  check(shown, `the nodes view shows this node: ${await cells(page, '#nodes-table')}`);
  check(/single node/.test(await page.textContent('#nodes-cluster')), 'and says lps runs as a single node');
  const labels = await page.$$eval('.shown-node', (xs) => [...new Set(xs.map((x) => x.textContent))]);
  check(labels.join() === node.name, `the views name the node they show: ${labels}`);
}

// A reload starts with the last 10 minutes lps kept: the charts are drawn from
// /api/v1/inspect/history before the stream has said anything new.
async function checkHistoryAcrossReload(page) {
  await page.click('button[data-view=overview]');
  const before = Number(await page.getAttribute('#chart-rates', 'data-samples'));
  await page.reload();
  const samples = await until(async () => {
    const n = Number(await page.getAttribute('#chart-rates', 'data-samples'));
    // lps keeps a sample a second from its start, before the page's first: at least as many.
    return n >= Math.max(2, before) ? n : null;
  }, 3000);
  check(samples, `after a reload the charts hold ${samples} samples at once (${before} before)`);
  const max = Number(await page.getAttribute('#chart-rates', 'data-max'));
  check(max > 0, `and the completions of the run before the reload (peak ${max}/s)`);
  // The time-to-result chart too: the history carries the metrics actor's histogram.
  const latency = Number(await page.getAttribute('#chart-latency', 'data-samples'));
  const slowest = Number(await page.getAttribute('#chart-latency', 'data-max'));
  check(latency >= Math.max(2, before) && slowest > 0,
        `and the time-to-result chart holds ${latency} samples with the run's (p99 peak ${slowest} s)`);
}

// The Configuration view: a known key with the value lps was started with, the OpenAI key as
// ***, and neither that key nor the admin token anywhere on the page; the filter narrows rows.
async function checkConfig(page) {
  await page.click('button[data-view=config]');
  const value = (key) => page.textContent(`#config-table tr[data-key="${key}"] td:nth-child(3)`,
                                          { timeout: 5000 }).catch(() => null);
  const mode = await until(() => value('QUEUE_PROCESSING_MODE'), 5000);
  check(mode === 'batch_api', `the Configuration view shows QUEUE_PROCESSING_MODE=${mode}`);
  check(await value('OPENAI_API_KEY') === '***', 'OPENAI_API_KEY shows as ***');
  const pageText = await page.evaluate(() => document.documentElement.outerHTML
    + document.body.innerText);
  check(!pageText.includes(OPENAI_KEY), 'the OpenAI key is nowhere on the page');
  check(!pageText.includes(TOKEN), 'the admin token is nowhere on the page');
  await page.fill('#config-filter', 'openai_api');
  const keys = await page.$$eval('#config-table tbody tr', (rows) => rows.map((r) => r.dataset.key));
  check(keys.join() === 'OPENAI_API_KEY', `the filter "openai_api" leaves ${keys}`);
  await page.fill('#config-filter', '');
}

async function cancelText(page) {
  return until(async () => {
    const text = await page.textContent('#jobs-message');
    return text.includes('cancel of') ? text : null;
  }, 5000);
}

// Without the token the cancel is refused; with the token typed into the page it goes through.
async function checkJobCancel(page, base, job) {
  await page.click('button[data-view=jobs]');
  const button = `tr[data-job="${job.job_id}"] button.cancel`;
  await page.waitForSelector(button, { timeout: 10000 });
  await page.click('#token-clear');
  await page.click(button);
  const refused = await cancelText(page);
  check(/refused/.test(refused || ''), `without the token the page says: ${refused}`);
  const state = await until(async () => {
    const s = await page.getAttribute('#stream-state', 'data-state');
    return s === 'disconnected' ? s : null;
  }, 5000);
  check(state, 'without the token the stream shows it is disconnected');
  const still = (await call(base, `/api/v1/batch-jobs/${job.job_id}`)).body;
  check(still.cancel_requested === false, 'and the job is not cancelled');
  await page.evaluate(() => { document.querySelector('#jobs-message').textContent = ''; });
  await page.fill('#token', TOKEN);
  await page.click('#token-form button[type=submit]');
  await page.click(button);
  const done = await cancelText(page);
  check(/requested/.test(done || ''), `with the token the page says: ${done}`);
  const after = (await call(base, `/api/v1/batch-jobs/${job.job_id}`)).body;
  check(after.cancel_requested === true, `the job is cancelled through the API (state ${after.state})`);
  const live = await until(async () => {
    const s = await page.getAttribute('#stream-state', 'data-state');
    return s === 'live' ? s : null;
  }, 5000);
  check(live, 'with the token again the stream is live');
}

// Known answers instead of lps' (the browser's requests to /metrics, the history and the
// stream are fulfilled by the test): the figures the page derives can then be checked exactly.
// /metrics with a time-to-result histogram the page must not use (its figures come from the
// snapshots' metrics actor, which the history carries across a reload).
const SYNTHETIC_METRICS = (n) => [
  'llm_provider_queue_wait_time_seconds_bucket{result="success",le="0.01"} 0',
  `llm_provider_queue_wait_time_seconds_bucket{result="success",le="+Inf"} ${1000 * n}`,
].join('\n') + '\n';

const actor = (name, kind, mailbox, handled, extra = {}) => ({
  name, kind, node: 'synthetic-node', responsive: true, mailbox_size: mailbox,
  messages_handled: handled, handled_per_second: 1, processing_ms: { p50: 0.004, p90: 0.5, p99: 2 },
  last_error: null, figures: {}, facts: {}, ...extra,
});

// Snapshot n of the stream: a mailbox growing by 10 a snapshot beside one that stays at 5, a
// silent actor, 10 completions a snapshot, and one row of every table.
const SYNTHETIC_SNAPSHOT = (n) => ({
  seq: n, at: new Date().toISOString(), node: 'synthetic-node',
  actors: [
    actor('flooded', 'test', 10 * n, n),
    actor('calm', 'test', 5, n),
    actor('silent', 'test', 0, 0, { responsive: false }),
    actor('queue-manager', 'queue_manager', 0, n, {
      figures: { queued: 5, retry_waiting: 2, processing: 3, accepted_total: 40 + 10 * n,
                 completed_total: 10 * n, failed_total: 0, expired_total: 0 } }),
    // 100 more results in (0.1 s, 1 s] at every snapshot: p50 = 0.1 + 0.9 * 0.5 = 0.55 s and
    // p99 = 0.1 + 0.9 * 0.99 = 0.991 s, interpolated as Prometheus' histogram_quantile does.
    actor('metrics', 'metrics', 0, n, {
      figures: { 'time_to_result_le_0.1': 0, 'time_to_result_le_1': 100 * n,
                 'time_to_result_le_+Inf': 100 * n } }),
  ],
  queue: [{ provider: 'mock', model: 'm-1', waiting: 12, oldest_age_seconds: 42 }],
  recent_bundles: [{ bundle_id: 'b-1', provider: 'mock', model: 'm-1', items: 4, succeeded: 3,
                     failed: 1, outcome: 'partial', duration_ms: 250 }],
  items_per_call: [{ items: 1, calls: 2 }, { items: 4, calls: 7 }],
  providers: [{ provider: 'mock', circuit_state: 'closed', paused_by: '', inflight_bundles: 3,
                max_inflight_bundles: 8, blocked_ms: 0, breaker_opened_total: 1,
                rate_limit_requests_available: 5, latency_ms_mean: 250, errors_RATE_LIMIT: 2 }],
  cluster: { leader: 'other-node', epoch: 4, lease_seconds: 5, error: null },
  nodes: [
    { name: 'synthetic-node', self: true, address: '127.0.0.1:4101', leader: false, state: 'up',
      last_heartbeat: new Date().toISOString(), heartbeat_age_seconds: 0.5, version: '9.9.9',
      in_flight_calls: 3, actors: 5, unresponsive_actors: 1, figures_age_seconds: 0,
      responsive: true, error: null },
    { name: 'other-node', self: false, address: '127.0.0.1:4102', leader: true, state: 'suspect',
      last_heartbeat: new Date().toISOString(), heartbeat_age_seconds: 3.5, version: '9.9.8',
      in_flight_calls: 2, actors: 7, unresponsive_actors: 0, figures_age_seconds: 4.2,
      responsive: false, error: 'no answer within 500 ms' },
    { name: 'third-node', self: false, address: '127.0.0.1:4103', leader: false, state: 'up',
      last_heartbeat: new Date().toISOString(), heartbeat_age_seconds: 0.7, version: '9.9.8',
      in_flight_calls: null, actors: null, unresponsive_actors: null, figures_age_seconds: null,
      responsive: false, error: 'not connected' },
  ],
});

const cells = (page, selector) => page.$$eval(`${selector} tbody tr`,
  (rows) => rows.map((r) => [...r.children].map((c) => c.textContent)));

async function checkDerivedFigures(context, base) {
  const page = await context.newPage();
  const answers = { metrics: 0, stream: 0 };
  await page.route(`${base}/metrics`, (route) => route.fulfill({
    contentType: 'text/plain', body: SYNTHETIC_METRICS(++answers.metrics) }));
  await page.route(/\/api\/v1\/inspect\/history/, (route) => route.fulfill({
    contentType: 'application/json', body: JSON.stringify({ seconds: 600, snapshots: [] }) }));
  // Each connection gets one event and ends, as if lps went away; the third is refused
  // outright. The page must reconnect by itself after the stream's retry delay every time.
  await page.route(`${base}/api/v1/inspect/stream`, (route) => {
    answers.stream += 1;
    if (answers.stream === 3) return route.abort('connectionreset');
    return route.fulfill({ contentType: 'text/event-stream', body:
      `: synthetic\nretry: 200\n\nid: ${answers.stream}\ndata: ${JSON.stringify(SYNTHETIC_SNAPSHOT(answers.stream))}\n\n` });
  });
  await page.addInitScript(() => {
    window.streamStates = [];
    new MutationObserver(() => window.streamStates.push(
      document.querySelector('#stream-state')?.dataset.state)).observe(document, {
      subtree: true, attributes: true, attributeFilter: ['data-state'] });
  });
  await page.goto(`${base}/console`);
  const p50 = await until(async () => {
    const text = await page.textContent('#fig-p50');
    return text === '550 ms' ? text : null;
  }, 10000);
  check(p50, `time to result p50 is 550 ms (${await page.textContent('#fig-p50')})`);
  check(await page.textContent('#fig-p99') === '991 ms', `p99 is 991 ms (${await page.textContent('#fig-p99')})`);
  check(await page.textContent('#fig-queued') === '7', 'queued is the queue manager\'s queued + retry_waiting (7)');
  check(await page.textContent('#fig-processing') === '3', 'processing is 3');
  await page.click('button[data-view=actors]');
  const growing = await until(() => page.$$eval('#actors-table tr.growing',
    (rows) => rows.map((r) => r.children[0].textContent).join()), 15000);
  check(growing === 'flooded', `only the growing mailbox is highlighted (${growing})`);
  check(answers.stream >= 6, `the page reconnected to the stream by itself (${answers.stream} connections, one refused)`);
  const states = await page.evaluate(() => window.streamStates);
  check(states.includes('disconnected') && states.includes('live'),
        'the page showed the stream disconnected, then live again');
  const silent = await page.$$eval('#actors-table tr.unresponsive', (r) => r.map((x) => x.children[0].textContent));
  check(silent.join() === 'silent', `the silent actor is marked unresponsive (${silent})`);
  const flooded = (await cells(page, '#actors-table')).find((r) => r[0] === 'flooded');
  check(flooded && flooded.slice(5, 8).join() === '0.004,0.500,2.0',
        `processing time p50, p90, p99 are shown (${flooded && flooded.slice(5, 8)})`);
  const queue = await cells(page, '#queue-table');
  check(JSON.stringify(queue) === JSON.stringify([['mock', 'm-1', '12', '42 s']]),
        `the queue view shows waiting by provider and model with the oldest age: ${queue}`);
  const bundles = await cells(page, '#bundles-table');
  check(JSON.stringify(bundles) === JSON.stringify([['b-1', 'mock', 'm-1', '4', '3', '1', 'partial', '250 ms']]),
        `the recent bundles table: ${bundles}`);
  const providers = await cells(page, '#providers-table');
  check(providers.length === 1 && providers[0].slice(0, 8).join('|')
        === 'mock|closed|no|3 / 8|5|0 ms|1|250 ms' && providers[0][9] === 'RATE_LIMIT: 2',
        `the providers view shows in flight against the limit and the rate-limit headroom: ${providers}`);
  const nodes = await cells(page, '#nodes-table');
  check(JSON.stringify(nodes) === JSON.stringify([
    ['synthetic-node', '127.0.0.1:4101', 'up', 'no', 'yes', '0.5 s ago', '9.9.9', '3', '5', '1',
     'answered, figures 0.0 s old'],
    ['other-node', '127.0.0.1:4102', 'suspect', 'yes', 'no', '3.5 s ago', '9.9.8', '2', '7', '0',
     'no answer within 500 ms, figures 4.2 s old'],
    ['third-node', '127.0.0.1:4103', 'up', 'no', 'no', '0.7 s ago', '9.9.8', '–', '–', '–',
     'not connected']]),
        `the nodes view lists the cluster's nodes with each node's own figures: ${nodes}`);
  const cluster = await page.textContent('#nodes-cluster');
  check(cluster === 'Cluster: leader other-node, epoch 4, lease 5.0 s', `the leader and its epoch: ${cluster}`);
  const labels = await page.$$eval('.shown-node', (xs) => [...new Set(xs.map((x) => x.textContent))]);
  check(labels.join() === 'synthetic-node', `the views name the node they show: ${labels}`);
  await page.close();
}

async function screenshots(page, dir) {
  mkdirSync(dir, { recursive: true });
  for (const view of await page.$$eval('#views button', (b) => b.map((x) => x.dataset.view))) {
    await page.click(`button[data-view=${view}]`);
    await page.screenshot({ path: join(dir, `console-${view}.png`), fullPage: true });
  }
  console.log(`screenshots: ${dir}`);
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'lps-console-test-'));
  let browser;
  try {
    const base = await startStack(dataDir);
    const job = await openBatchJob(base);
    check(job, 'a batch job is open at the mock provider');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    // The token as an operator would have typed it earlier in this tab.
    await context.addInitScript((t) => sessionStorage.setItem('lps.console.token', t), TOKEN);
    const page = await context.newPage();
    const seen = watch(page, new URL(base).origin);
    await page.goto(`${base}/console`);
    await until(async () => (await page.textContent('#status')).startsWith('updated'), 10000);
    check((await page.textContent('#status')).startsWith('updated'),
          `the page reads every route with the admin token alone: ${await page.textContent('#status')}`);
    const live = await until(async () => (await page.getAttribute('#stream-state', 'data-state')) === 'live', 5000);
    check(live, `the inspection stream is live: ${await page.textContent('#stream-state')}`);
    await checkOverviewAndRun(page, base);
    await checkActors(page, base);
    await checkProviders(page, base);
    await checkBundlesAndNodes(page, base);
    await checkConfig(page);
    await screenshots(page, args.artifacts);
    check(seen.errors.length === 0, `no console errors with the token: ${seen.errors}`);
    check(seen.failed.length === 0, `no failed requests: ${seen.failed}`);
    // From here the page drops its stream on purpose (a reload, a new token): chromium counts
    // those as failed requests.
    await checkHistoryAcrossReload(page);
    await checkDerivedFigures(context, base);
    if (job) await checkJobCancel(page, base, job);
    // Without the token the page got 401s (reported by chromium as console errors): only those.
    check(seen.errors.every((e) => /401/.test(e)), `only 401 errors without the token: ${seen.errors}`);
    check(seen.foreign.length === 0, `no request to another host than lps: ${seen.foreign}`);
  } catch (error) {
    check(false, `the test ran to its end: ${error.stack || error}`);
  } finally {
    if (browser) await browser.close();
    await Promise.all(children.map(stop));
    rmSync(dataDir, { recursive: true, force: true });
  }
  console.log(`console_test: ${failures ? failures + ' FAILED' : 'all passed'} in ${Date.now() - started} ms`);
  process.exit(failures ? 1 : 0);
}

main();
