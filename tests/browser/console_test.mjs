// The web console in a real browser (docs/console.md): Debian's chromium, headless, driven by
// playwright-core (tools/browser). Starts lps (mock provider for a run; OpenAI's batch API on
// the project's mock provider server for a batch job that stays open) on 127.0.0.1 with an
// ADMIN_TOKEN, opens /console and checks what an operator sees. Screenshots of every view go
// to the artifacts folder.
//
// node tests/browser/console_test.mjs --lps=BIN --mock-provider=BIN --artifacts=DIR
// Exit code 0 when every check passed; any failure (chromium missing included) exits 1.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
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
  const mock = await startServer(args['mock-provider'],
    ['--port=0', '--batch-processing-ms=600000', `--api-key=${OPENAI_KEY}`], {},
    /listening on (http:\/\/\S+)/);
  const lps = await startServer(args.lps, [
    '--http-port=0', `--data-dir=${dataDir}`, `--admin-token=${TOKEN}`,
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
  await page.click('button[data-view=overview]');
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
}

async function checkProviders(page, base) {
  await page.click('button[data-view=providers]');
  const api = (await call(base, '/api/v1/providers')).body.providers
    .map((p) => `${p.name} ${p.circuit_state}`).sort();
  const shown = (await page.$$eval('#providers-table tbody tr',
    (rows) => rows.map((r) => `${r.children[0].textContent} ${r.children[2].textContent}`))).sort();
  check(JSON.stringify(shown) === JSON.stringify(api),
        `the providers table shows /api/v1/providers' breakers: ${shown}`);
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
}

// Known answers instead of lps' (the browser's requests to the two routes are fulfilled by
// the test): the figures the page derives can then be checked exactly.
const SYNTHETIC_METRICS = (n) => [
  'llm_provider_queue_depth{status="queued"} 7',
  'llm_provider_queue_depth{status="processing"} 3',
  // 100 more results in (0.1 s, 1 s] at every answer: p50 = 0.1 + 0.9 * 0.5 = 0.55 s and
  // p99 = 0.1 + 0.9 * 0.99 = 0.991 s, interpolated as Prometheus' histogram_quantile does.
  'llm_provider_queue_wait_time_seconds_bucket{result="success",le="0.1"} 0',
  `llm_provider_queue_wait_time_seconds_bucket{result="success",le="1"} ${100 * n}`,
  `llm_provider_queue_wait_time_seconds_bucket{result="success",le="+Inf"} ${100 * n}`,
].join('\n') + '\n';

// A mailbox growing by 10 at every answer beside one that stays at 5.
const SYNTHETIC_ACTORS = (n) => ({
  actors: [
    { name: 'flooded', kind: 'test', mailbox_size: 10 * n, messages_handled: n, figures: {}, facts: {} },
    { name: 'calm', kind: 'test', mailbox_size: 5, messages_handled: n, figures: {}, facts: {} },
  ],
});

async function checkDerivedFigures(context, base) {
  const page = await context.newPage();
  const answers = { metrics: 0, actors: 0 };
  await page.route(`${base}/metrics`, (route) => route.fulfill({
    contentType: 'text/plain', body: SYNTHETIC_METRICS(++answers.metrics) }));
  await page.route(`${base}/api/v1/inspect`, (route) => route.fulfill({
    contentType: 'application/json', body: JSON.stringify(SYNTHETIC_ACTORS(++answers.actors)) }));
  await page.goto(`${base}/console`);
  const p50 = await until(async () => {
    const text = await page.textContent('#fig-p50');
    return text === '550 ms' ? text : null;
  }, 10000);
  check(p50, `time to result p50 is 550 ms (${await page.textContent('#fig-p50')})`);
  check(await page.textContent('#fig-p99') === '991 ms', `p99 is 991 ms (${await page.textContent('#fig-p99')})`);
  check(await page.textContent('#fig-queued') === '7', 'queued is the gauge\'s 7');
  await page.click('button[data-view=actors]');
  const growing = await until(() => page.$$eval('#actors-table tr.growing',
    (rows) => rows.map((r) => r.children[0].textContent).join()), 10000);
  check(growing === 'flooded', `only the growing mailbox is highlighted (${growing})`);
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
          `the page reads every route with the token: ${await page.textContent('#status')}`);
    await checkOverviewAndRun(page, base);
    await checkActors(page, base);
    await checkProviders(page, base);
    await checkConfig(page);
    await screenshots(page, args.artifacts);
    check(seen.errors.length === 0, `no console errors with the token: ${seen.errors}`);
    check(seen.failed.length === 0, `no failed requests: ${seen.failed}`);
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
