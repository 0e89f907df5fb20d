// The gateway path (docs/gateway.md) through the official OpenAI SDK (npm `openai`, pinned in
// tools/sdk): lps on 127.0.0.1 with every provider pointed at the project's mock provider
// server, which checks each upstream request the way the real API does. Plain, json_schema and
// tools calls for each upstream format (OpenAI, Anthropic, Gemini, OpenRouter, lps's built-in
// mock), streamed calls (tests/sdk/gateway_stream_checks.mjs: the SDK iterating chunks, and
// raw HTTP for chunk timing, [DONE], error forms and a client disconnect), upstream faults (429
// with Retry-After, 500, 529, timeouts), bad input (malformed JSON, unknown model, missing
// messages, oversized body), client keys, per-key usage and metrics.
//
// node tests/sdk/gateway_sdk_test.mjs --lps=BIN --mock-provider=BIN
// Exit code 0 when every check passed; any failure (the SDK missing included) exits 1.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rawStreams, sdkStreams } from './gateway_stream_checks.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const require = createRequire(join(here, '../../tools/sdk/package.json'));
const OpenAI = require('openai').default ?? require('openai');

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const PROVIDER_KEY = 'sk-sdk-test-provider-7c1d0e';
const CLIENT_KEY = 'lps-sdk-client-key-4b9e';
const ADMIN = 'sdk-test-admin-token';
const MAX_BODY = 65536;
const children = [];
let failures = 0;

function check(condition, what) {
  console.log(`${condition ? 'ok' : 'FAILED'}: ${what}`);
  if (!condition) failures += 1;
}

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

function stop(child) {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 10000);
    child.on('exit', () => { clearTimeout(kill); resolve(); });
    child.kill('SIGTERM');
  });
}

async function mockControl(mock, path, body) {
  const response = await fetch(mock + path, {
    method: body ? 'POST' : 'GET',
    headers: { 'Content-Type': 'application/json' },
    body: body && JSON.stringify(body),
  });
  return response.json();
}

// The error a call threw, or null when it succeeded.
async function failureOf(promise) {
  try {
    await promise;
    return null;
  } catch (err) {
    return err;
  }
}

const weatherTool = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The weather in a city.',
    parameters: {
      type: 'object',
      properties: { city: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
      required: ['city', 'unit'],
      additionalProperties: false,
    },
  },
};

const gradeFormat = {
  type: 'json_schema',
  json_schema: {
    name: 'grade',
    strict: true,
    schema: {
      type: 'object',
      properties: { score: { type: 'integer' }, feedback: { type: 'string' }, passed: { type: 'boolean' } },
      required: ['score', 'feedback', 'passed'],
      additionalProperties: false,
    },
  },
};

async function plainCall(client, model, label) {
  const prompt = `Say hello to ${label}`;
  const r = await client.chat.completions.create({
    model,
    messages: [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: [{ type: 'text', text: prompt }] },
    ],
    temperature: 0.5,
    max_tokens: 50,
  });
  check(r.object === 'chat.completion', `${label}: plain call answers a chat.completion`);
  const choice = r.choices[0];
  check(choice.message.role === 'assistant' && choice.message.content.includes(prompt),
    `${label}: the answer names the prompt (${JSON.stringify(choice.message.content)})`);
  check(choice.finish_reason === 'stop', `${label}: finish_reason stop`);
  check(r.usage.prompt_tokens > 0 && r.usage.completion_tokens > 0
    && r.usage.total_tokens === r.usage.prompt_tokens + r.usage.completion_tokens,
    `${label}: usage ${JSON.stringify(r.usage)}`);
}

async function schemaCall(client, model, label) {
  const r = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Grade this essay as JSON.' }],
    response_format: gradeFormat,
    max_completion_tokens: 200,
  });
  let parsed = null;
  try { parsed = JSON.parse(r.choices[0].message.content); } catch { /* checked below */ }
  check(parsed && Number.isInteger(parsed.score) && typeof parsed.feedback === 'string'
    && typeof parsed.passed === 'boolean',
    `${label}: json_schema answer matches the schema (${r.choices[0].message.content})`);
  check(r.choices[0].finish_reason === 'stop', `${label}: json_schema finish_reason stop`);
}

async function toolsCall(client, model, label) {
  const messages = [{ role: 'user', content: 'What is the weather in Oslo?' }];
  const first = await client.chat.completions.create({
    model, messages, tools: [weatherTool], tool_choice: 'auto',
  });
  const call = first.choices[0].message.tool_calls?.[0];
  let args = null;
  try { args = JSON.parse(call.function.arguments); } catch { /* checked below */ }
  check(first.choices[0].finish_reason === 'tool_calls' && call?.function.name === 'get_weather'
    && typeof args?.city === 'string', `${label}: tools call asks for get_weather (${JSON.stringify(call)})`);
  if (!call) return;
  messages.push(first.choices[0].message);
  messages.push({ role: 'tool', tool_call_id: call.id, content: '{"temperature": 4}' });
  const second = await client.chat.completions.create({ model, messages, tools: [weatherTool] });
  check(second.choices[0].finish_reason === 'stop'
    && second.choices[0].message.content.startsWith('Mock answer to:'),
    `${label}: after the tool result the model answers in text`);
}

const MODELS = [
  ['gpt-4o-mini-2024-07-18', 'openai'],
  ['claude-haiku-4-5-20251001', 'anthropic'],
  ['gemini-2.5-flash', 'gemini'],
  ['openrouter/meta-llama/llama-3.3-70b-instruct', 'openrouter'],
  ['mock/any-model', null],
];

async function upstreamFormats(client, mock) {
  for (const [model, dialect] of MODELS) {
    const before = await mockControl(mock, '/_mock/stats');
    await plainCall(client, model, model);
    await schemaCall(client, model, model);
    await toolsCall(client, model, model);
    const after = await mockControl(mock, '/_mock/stats');
    const calls = (s) => (dialect ? s.by_dialect?.[dialect] ?? 0 : s.calls);
    check(dialect ? calls(after) - calls(before) === 4 : after.calls === before.calls,
      `${model}: ${dialect ? `4 upstream calls in the ${dialect} dialect` : 'no upstream call'}`
      + ` (${calls(before)} -> ${calls(after)})`);
    check((after.by_outcome?.invalid_request ?? 0) === 0, `${model}: the mock rejected no upstream request`);
  }
}

async function faults(client, mock, lps) {
  const model = 'gpt-4o-mini-2024-07-18';
  const ask = () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
  const stats = () => mockControl(mock, '/_mock/stats');

  let before = await stats();
  await mockControl(mock, '/_mock/faults', { dialect: 'openai', faults: [{ kind: 'status', status: 429, retry_after: '1' }] });
  let started = Date.now();
  let r = await ask();
  let after = await stats();
  check(r.choices[0].message.content.startsWith('Mock answer') && Date.now() - started >= 900
    && after.by_dialect.openai - before.by_dialect.openai === 2,
    'upstream 429 with Retry-After 1: lps waits it out and retries once, the client gets 200');

  before = after;
  await mockControl(mock, '/_mock/faults', { dialect: 'openai', faults: [{ kind: 'status', status: 500 }] });
  r = await ask();
  after = await stats();
  check(r.choices[0].finish_reason === 'stop' && after.by_dialect.openai - before.by_dialect.openai === 2,
    'upstream 500 once: retried, the client gets 200');

  before = after;
  await mockControl(mock, '/_mock/faults', { dialect: 'anthropic', faults: [{ kind: 'status', status: 529 }] });
  r = await client.chat.completions.create({ model: 'claude-haiku-4-5-20251001', messages: [{ role: 'user', content: 'hi' }] });
  after = await stats();
  check(r.choices[0].finish_reason === 'stop' && after.by_dialect.anthropic - before.by_dialect.anthropic === 2,
    'Anthropic 529 overloaded once: retried, the client gets 200');

  before = after;
  await mockControl(mock, '/_mock/faults', { dialect: 'openai', faults: [{ kind: 'status', status: 500, count: 3 }] });
  let err = await failureOf(ask());
  after = await stats();
  check(err?.status === 502 && err?.error?.type === 'upstream_error'
    && after.by_dialect.openai - before.by_dialect.openai === 3,
    `upstream 500 on every attempt: 3 attempts, then 502 in OpenAI's error shape (${err?.status} ${err?.message})`);

  await mockControl(mock, '/_mock/faults', { dialect: 'openai', faults: [{ kind: 'status', status: 429, retry_after: '30' }] });
  started = Date.now();
  err = await failureOf(ask());
  check(err?.status === 429 && err?.headers?.get('retry-after') === '30' && Date.now() - started < 5000,
    `upstream 429 with Retry-After 30 (longer than lps waits): 429 with Retry-After 30 at once (${err?.status})`);

  await mockControl(mock, '/_mock/faults', { dialect: 'openai', faults: [{ kind: 'delay', ms: 4000, count: 3 }] });
  started = Date.now();
  err = await failureOf(ask());
  check(err?.status === 504 && err?.error?.code === 'upstream_timeout' && Date.now() - started < 8000,
    `upstream timeouts on every attempt: 504 timeout_error (${err?.status} ${err?.message})`);
  void lps;
}

// A plain call's first attempt is sent by the route itself, not by the provider actor
// (app/gateway_direct.hpp); a retry of it goes to the actor. Read from the actor's own
// figures (GET /api/v1/inspect) and the per-attempt metric the route records for it.
async function directPath(lps, client, mock) {
  const model = 'gpt-4o-mini-2024-07-18';
  const ask = () => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] });
  const figures = async () => {
    const all = await (await fetch(`${lps}/api/v1/inspect`, { headers: { Authorization: `Bearer ${ADMIN}` } })).json();
    return all.actors.find((a) => a.name === 'provider:openai')?.figures ?? {};
  };
  const attempts = async (status) => {
    const text = await (await fetch(`${lps}/metrics`)).text();
    const m = text.match(new RegExp(`llm_provider_http_calls_total\\{provider="openai",endpoint="/chat/completions",status_code="${status}"\\} (\\d+)`));
    return m ? Number(m[1]) : 0;
  };
  let before = await figures();
  const ok200 = await attempts(200);
  for (let i = 0; i < 3; ++i) await ask();
  let after = await figures();
  check(after.gateway_calls_total === before.gateway_calls_total && await attempts(200) === ok200 + 3,
    `plain calls: sent by the route, not the provider actor (actor calls ${before.gateway_calls_total} -> ${after.gateway_calls_total}), each attempt counted in llm_provider_http_calls_total`);

  before = after;
  const failed500 = await attempts(500);
  await mockControl(mock, '/_mock/faults', { dialect: 'openai', faults: [{ kind: 'status', status: 500 }] });
  const r = await ask();
  after = await figures();
  check(r.choices[0].finish_reason === 'stop' && after.gateway_calls_total === before.gateway_calls_total + 1
    && after.gateway_retries_total === before.gateway_retries_total + 1 && await attempts(500) === failed500 + 1,
    `a plain call's retryable failure: the provider actor retries it (actor calls +${after.gateway_calls_total - before.gateway_calls_total}, retries +${after.gateway_retries_total - before.gateway_retries_total})`);

  // Streamed calls too: the first attempt from the route, a retry (nothing streamed yet) by
  // the actor, which then streams to the same client.
  const streamed = async () => {
    let text = '';
    const stream = await client.chat.completions.create({ model, stream: true, messages: [{ role: 'user', content: 'hi' }] });
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    return text;
  };
  before = after;
  const ok200s = await attempts(200);
  const texts = [await streamed(), await streamed()];
  after = await figures();
  check(texts.every((t) => t.length > 0) && after.gateway_calls_total === before.gateway_calls_total
    && await attempts(200) === ok200s + 2,
    `streamed calls: sent by the route, not the provider actor (actor calls ${before.gateway_calls_total} -> ${after.gateway_calls_total}), each attempt counted`);
  before = after;
  await mockControl(mock, '/_mock/faults', { dialect: 'openai', faults: [{ kind: 'status', status: 500 }] });
  const retried = await streamed();
  after = await figures();
  check(retried.length > 0 && after.gateway_calls_total === before.gateway_calls_total + 1
    && after.gateway_retries_total === before.gateway_retries_total + 1,
    `a streamed call's retryable failure before its first chunk: the provider actor retries it and streams (actor calls +${after.gateway_calls_total - before.gateway_calls_total}, retries +${after.gateway_retries_total - before.gateway_retries_total})`);
}

async function badInput(lps, client) {
  const post = (body, headers = {}) => fetch(`${lps}/v1/chat/completions`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${CLIENT_KEY}`, 'Content-Type': 'application/json', ...headers },
    body,
  });
  const shaped = (b) => b?.error && typeof b.error.message === 'string' && typeof b.error.type === 'string'
    && 'param' in b.error && 'code' in b.error;

  let res = await post('{"model": "gpt-4o-mini", "messages": [');
  let body = await res.json();
  check(res.status === 400 && shaped(body) && body.error.code === 'invalid_json', 'malformed JSON: OpenAI-shaped 400');

  res = await post(JSON.stringify({ model: 'gpt-4o-mini' }));
  body = await res.json();
  check(res.status === 400 && shaped(body) && body.error.param === 'messages', 'missing messages: 400 with param messages');

  let err = await failureOf(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
  check(err?.status === 404 && err?.error?.code === 'model_not_found', 'unknown model: 404 model_not_found');

  res = await post(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(MAX_BODY) }] }));
  body = await res.json();
  check(res.status === 413 && shaped(body), `oversized body: OpenAI-shaped 413 (${res.status})`);

  res = await post(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'wizard', content: 'x' }] }));
  body = await res.json();
  check(res.status === 400 && body.error.param === 'messages[0].role', 'unknown role: 400 naming messages[0].role');

  res = await post(JSON.stringify({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }], stream: 'yes' }));
  body = await res.json();
  check(res.status === 400 && body.error.param === 'stream', 'stream not a boolean: 400 naming stream');

  const stranger = new OpenAI({ baseURL: `${lps}/v1`, apiKey: 'not-a-key', maxRetries: 0 });
  err = await failureOf(stranger.chat.completions.create({ model: 'mock/x', messages: [{ role: 'user', content: 'x' }] }));
  check(err?.status === 401 && err?.error?.code === 'invalid_api_key', 'a wrong key: 401 invalid_api_key');
}

async function views(lps, client) {
  const list = await client.models.list();
  const ids = list.data.map((m) => m.id);
  check(ids.includes('gpt-4o-mini-2024-07-18') && ids.includes('claude-haiku-4-5-20251001')
    && list.data.every((m) => m.object === 'model'), `GET /v1/models lists the manifest (${ids.length} models)`);

  const usage = await (await fetch(`${lps}/api/v1/inspect/gateway`, { headers: { Authorization: `Bearer ${ADMIN}` } })).json();
  const mine = usage.keys?.find((k) => k.key === 'sdk-client');
  check(mine && mine.requests > 10 && mine.prompt_tokens > 0 && mine.cost_usd > 0 && mine.errors > 0,
    `/api/v1/inspect/gateway: usage of key sdk-client (${JSON.stringify(mine)})`);

  const metrics = await (await fetch(`${lps}/metrics`)).text();
  check(/llm_provider_gateway_requests_total\{provider="openai",model="gpt-4o-mini-2024-07-18",status_code="200",queue_processing_mode="gateway"\} [1-9]/.test(metrics),
    'metrics: llm_provider_gateway_requests_total with queue_processing_mode="gateway"');
  check(!metrics.includes('sdk-client') && !metrics.includes(CLIENT_KEY), 'metrics name no client key');
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'lps-sdk-'));
  try {
    const keysFile = join(dir, 'keys');
    writeFileSync(keysFile, `sdk-client ${createHash('sha256').update(CLIENT_KEY).digest('hex')}\n`);
    const mock = await startServer(args['mock-provider'], ['--port=0', `--api-key=${PROVIDER_KEY}`], {},
      /listening on (http:\/\/\S+)/);
    const lps = await startServer(args.lps, [
      '--http-port=0', `--data-dir=${join(dir, 'data')}`, `--api-keys-file=${keysFile}`,
      `--model-manifest=${join(here, '../../config/models.json')}`, // ctest runs elsewhere
      `--admin-token=${ADMIN}`, `--http-max-body-bytes=${MAX_BODY}`,
      '--provider-request-timeout-ms=1500', '--gateway-max-attempts=3',
      `--openai-base-url=${mock}/v1`, `--anthropic-base-url=${mock}`, `--google-base-url=${mock}`,
      `--openrouter-base-url=${mock}/api/v1`,
    ], {
      OPENAI_API_KEY: PROVIDER_KEY, ANTHROPIC_API_KEY: PROVIDER_KEY, GOOGLE_API_KEY: PROVIDER_KEY,
      OPENROUTER_API_KEY: PROVIDER_KEY,
    }, /lps listening on (http:\/\/\S+)/);
    const client = new OpenAI({ baseURL: `${lps}/v1`, apiKey: CLIENT_KEY, maxRetries: 0, timeout: 30000 });
    await upstreamFormats(client, mock);
    await directPath(lps, client, mock);
    await sdkStreams(client, check, MODELS, weatherTool, gradeFormat);
    await rawStreams(lps, mock, CLIENT_KEY, ADMIN, check, mockControl);
    await faults(client, mock, lps);
    await badInput(lps, client);
    await views(lps, client);
  } catch (err) {
    check(false, `the run ended early: ${err.stack || err}`);
  } finally {
    for (const child of children) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(failures === 0 ? 'all checks passed' : `${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main();
