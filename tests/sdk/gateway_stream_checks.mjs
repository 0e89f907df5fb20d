// The gateway's `stream: true` (docs/gateway.md, "Streaming"), used by gateway_sdk_test.mjs:
// through the OpenAI SDK (chunks iterated for every upstream format, json_schema answers as
// content), and over raw HTTP sockets where the SDK would hide what matters: the first chunk
// arriving before the upstream stream ends, `data: [DONE]`, the error forms, and a client
// that disconnects before the answer or mid-stream, streamed or not (the mock server sees the
// upstream call cancelled at once, not at its next write; the gate's slot is freed).

import { connect } from 'node:net';

// Every chunk of a streamed SDK call, with the text, tool calls and usage put together.
async function collect(stream) {
  const out = { chunks: 0, text: '', finish: null, usage: null, tools: [], objects: new Set(), models: new Set() };
  for await (const chunk of stream) {
    out.chunks += 1;
    out.objects.add(chunk.object);
    out.models.add(chunk.model);
    if (chunk.usage) out.usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    out.text += choice.delta?.content ?? '';
    for (const t of choice.delta?.tool_calls ?? []) {
      out.tools[t.index] ??= { id: '', name: '', arguments: '' };
      out.tools[t.index].id += t.id ?? '';
      out.tools[t.index].name += t.function?.name ?? '';
      out.tools[t.index].arguments += t.function?.arguments ?? '';
    }
    if (choice.finish_reason) out.finish = choice.finish_reason;
  }
  return out;
}

export async function sdkStreams(client, check, models, weatherTool, gradeFormat) {
  for (const [model] of models) {
    const prompt = `Stream a hello to ${model}`;
    const r = await collect(await client.chat.completions.create({
      model, messages: [{ role: 'user', content: prompt }], stream: true, stream_options: { include_usage: true },
    }));
    check(r.chunks >= 3 && r.objects.size === 1 && r.objects.has('chat.completion.chunk') && r.text.includes(prompt)
      && r.finish === 'stop', `${model}: streamed plain call: ${r.chunks} chunks, text ${JSON.stringify(r.text)}`);
    check(r.usage?.prompt_tokens > 0 && r.usage?.completion_tokens > 0, `${model}: streamed usage ${JSON.stringify(r.usage)}`);

    const bare = await collect(await client.chat.completions.create({
      model, messages: [{ role: 'user', content: prompt }], stream: true,
    }));
    check(bare.usage === null && bare.text === r.text, `${model}: without include_usage no usage chunk, same text`);

    const t = await collect(await client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'What is the weather in Oslo?' }], tools: [weatherTool], stream: true,
    }));
    let args = null;
    try { args = JSON.parse(t.tools[0]?.arguments); } catch { /* checked below */ }
    check(t.finish === 'tool_calls' && t.tools[0]?.name === 'get_weather' && t.tools[0]?.id
      && typeof args?.city === 'string', `${model}: streamed tools call (${JSON.stringify(t.tools)})`);

    // json_schema comes as content for every upstream (Anthropic's forced tool included).
    const j = await collect(await client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'Grade this essay: rivers are long.' }],
      response_format: gradeFormat, stream: true,
    }));
    let graded = null;
    try { graded = JSON.parse(j.text); } catch { /* checked below */ }
    check(j.finish === 'stop' && j.tools.length === 0 && Number.isInteger(graded?.score)
      && typeof graded?.feedback === 'string' && typeof graded?.passed === 'boolean',
    `${model}: streamed json_schema answer as content, finish stop (${JSON.stringify(j.text)}, ${j.finish})`);
  }
}

// One raw HTTP exchange: the bytes with the time each piece came, until the server closes.
// `until(text)` true: the client closes its end (a disconnect mid-stream).
function rawPost(base, path, body, key, until = null) {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const pieces = [];
    let text = '';
    const socket = connect(Number(url.port), url.hostname, () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${key}\r\n`
        + `Content-Type: application/json\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    });
    socket.setEncoding('utf8');
    socket.on('data', (d) => {
      pieces.push({ at: Date.now() - started, text: d });
      text += d;
      if (until && until(text)) socket.destroy();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ text, pieces, took: Date.now() - started }));
    socket.setTimeout(20000, () => socket.destroy(new Error('no end within 20 s')));
  });
}

// Sends one request over a raw socket, waits for `ready()` (the upstream call is held), then
// closes the connection: when it left, and what it got before (nothing is expected).
async function postAndLeave(base, path, body, key, ready) {
  const url = new URL(base);
  const socket = connect(Number(url.port), url.hostname);
  await new Promise((ok, fail) => { socket.once('connect', ok); socket.once('error', fail); });
  let got = '';
  socket.setEncoding('utf8');
  socket.on('data', (d) => { got += d; });
  socket.on('error', () => {}); // a reset after we left is no failure
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${key}\r\n`
    + `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  await ready();
  const left = Date.now();
  socket.destroy();
  return { left, got };
}

// Polls `probe` every 10 ms until it gives something true; the value, or null after `ms`.
async function waitFor(probe, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v || Date.now() > end) return v || null;
    await new Promise((done) => setTimeout(done, 10));
  }
}

// Status, headers and the de-chunked body of a raw answer; `whole` says whether the chunked
// body ended with its last chunk.
function parseAnswer(raw) {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split).split('\r\n');
  const status = Number(head[0].split(' ')[1]);
  const headers = Object.fromEntries(head.slice(1).map((h) => {
    const i = h.indexOf(':');
    return [h.slice(0, i).toLowerCase(), h.slice(i + 1).trim()];
  }));
  let rest = raw.slice(split + 4);
  if (headers['transfer-encoding'] !== 'chunked') return { status, headers, body: rest, whole: true };
  let body = '';
  let whole = false;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    if (eol < 0) break;
    const size = parseInt(rest.slice(0, eol), 16);
    if (size === 0) { whole = true; break; }
    body += rest.slice(eol + 2, eol + 2 + size); // sizes are bytes; the events here are ASCII
    rest = rest.slice(eol + 4 + size);
  }
  return { status, headers, body, whole };
}

function dataEvents(body) {
  return body.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
}

async function keyUsage(lps, admin) {
  const usage = await (await fetch(`${lps}/api/v1/inspect/gateway`, { headers: { Authorization: `Bearer ${admin}` } })).json();
  return usage;
}

export async function rawStreams(lps, mock, key, admin, check, mockControl) {
  const request = (model, extra = {}) => JSON.stringify({
    model, messages: [{ role: 'user', content: 'Tell me a long story about streams and rivers please' }],
    stream: true, ...extra,
  });
  const fault = (dialect, f) => mockControl(mock, '/_mock/faults', { dialect, faults: [f] });

  // Chunks are written as they come: with 120 ms between upstream events the first reaches
  // the client long before the upstream stream ends.
  const tokensBefore = (await keyUsage(lps, admin)).keys.find((k) => k.key === 'sdk-client');
  await fault('openai', { kind: 'slow_stream', ms: 120 });
  let r = await rawPost(lps, '/v1/chat/completions', request('gpt-4o-mini-2024-07-18'), key);
  let a = parseAnswer(r.text);
  const firstChunk = r.pieces.find((p) => p.text.includes('data: {'));
  const events = dataEvents(a.body);
  check(a.status === 200 && a.headers['content-type'] === 'text/event-stream' && a.whole
    && events.at(-1) === '[DONE]' && events.length >= 5,
    `raw stream: 200 text/event-stream, ${events.length} events ending with data: [DONE]`);
  check(firstChunk && firstChunk.at + 400 < r.took,
    `raw stream: the first chunk came at ${firstChunk?.at} ms, the end at ${r.took} ms (not buffered)`);
  check(events.slice(0, -1).every((e) => JSON.parse(e).object === 'chat.completion.chunk'),
    'raw stream: every event before [DONE] is a chat.completion.chunk');
  const tokensAfter = (await keyUsage(lps, admin)).keys.find((k) => k.key === 'sdk-client');
  check(tokensAfter.completion_tokens > tokensBefore.completion_tokens && tokensAfter.requests === tokensBefore.requests + 1,
    `raw stream without include_usage: the key's tokens still count the upstream's usage chunk (${tokensBefore.completion_tokens} -> ${tokensAfter.completion_tokens})`);

  // An upstream error before the first byte: the JSON error of a non-streamed call.
  await fault('openai', { kind: 'status', status: 429, retry_after: '30' });
  r = await rawPost(lps, '/v1/chat/completions', request('gpt-4o-mini-2024-07-18'), key);
  a = parseAnswer(r.text);
  let body = null;
  try { body = JSON.parse(a.body); } catch { /* checked below */ }
  check(a.status === 429 && a.headers['retry-after'] === '30' && a.headers['content-type'] === 'application/json'
    && body?.error?.type === 'rate_limit_error', `stream, upstream 429 before the first byte: JSON 429 (${a.status} ${a.body})`);

  await fault('anthropic', { kind: 'status', status: 500, count: 3 });
  r = await rawPost(lps, '/v1/chat/completions', request('claude-haiku-4-5-20251001'), key);
  a = parseAnswer(r.text);
  try { body = JSON.parse(a.body); } catch { body = null; }
  check(a.status === 502 && body?.error?.type === 'upstream_error',
    `stream, Anthropic 500 on every attempt: JSON 502 (${a.status})`);

  // A stream cut mid-way: the chunks so far, one error event, then the end of the body.
  for (const [model, dialect] of [['gpt-4o-mini-2024-07-18', 'openai'], ['gemini-2.5-flash', 'gemini'],
    ['claude-haiku-4-5-20251001', 'anthropic']]) {
    await fault(dialect, { kind: 'cut', after: 3 });
    r = await rawPost(lps, '/v1/chat/completions', request(model), key);
    a = parseAnswer(r.text);
    const ev = dataEvents(a.body);
    let last = null;
    try { last = JSON.parse(ev.at(-1)); } catch { /* checked below */ }
    check(a.status === 200 && a.whole && !ev.includes('[DONE]') && ev.length >= 2
      && last?.error?.code === 'upstream_stream_cut' && last?.error?.type === 'upstream_error',
      `${dialect} stream cut after 3 events: chunks, then an error event and the end (${JSON.stringify(ev.at(-1))})`);
  }

  // The client leaves mid-stream: lps sees it at once (not at the next upstream event, 1 s
  // away), cancels the upstream call, and the mock sees its client gone (`abandoned`) at once
  // too, its stream `cancelled` at its own next write; the gate's slot is freed. Without the
  // cancel the stream would run into lps's 1.5 s provider timeout.
  const before = await mockControl(mock, '/_mock/stats');
  await fault('openai', { kind: 'slow_stream', ms: 1000 });
  let left = 0;
  r = await rawPost(lps, '/v1/chat/completions', request('gpt-4o-mini-2024-07-18'), key,
    (text) => { left = Date.now(); return text.includes('data: {'); });
  let stats = await waitFor(async () => {
    const s = await mockControl(mock, '/_mock/stats');
    return s.abandoned > before.abandoned && s;
  }, 3000);
  const abandonedAfter = stats ? Date.now() - left : null;
  check(stats && abandonedAfter < 600,
    `client disconnect mid-stream: the upstream call was cancelled after ${abandonedAfter} ms, before the next event (1 s)`);
  stats = await waitFor(async () => {
    const s = await mockControl(mock, '/_mock/stats');
    return s.streams.cancelled > before.streams.cancelled && s;
  }, 3000);
  check(stats?.streams.started === before.streams.started + 1
    && stats?.streams.cancelled === before.streams.cancelled + 1 && stats?.streams.open === 0,
    `client disconnect mid-stream: the mock's stream ended by its client (${JSON.stringify(stats?.streams)})`);
  await slotFree('mid-stream', 'openai');

  // The client leaves while the provider holds the answer (a 5 s delay): non-streamed, and
  // streamed before the first chunk. lps cancels the upstream call at once (the mock sees its
  // client gone long before the delay or lps's 1.5 s timeout), writes nothing to the closed
  // socket, does not retry, frees the slot and records the call as 499.
  for (const [label, model, dialect, stream] of [
    ['non-streamed', 'gpt-4o-mini-2024-07-18', 'openai', false],
    ['streamed, before the first chunk', 'claude-haiku-4-5-20251001', 'anthropic', true]]) {
    const was = await mockControl(mock, '/_mock/stats');
    await fault(dialect, { kind: 'delay', ms: 5000 });
    const body = JSON.parse(request(model));
    body.stream = stream;
    const gone = await postAndLeave(lps, '/v1/chat/completions', JSON.stringify(body), key,
      () => waitFor(async () => (await mockControl(mock, '/_mock/stats')).in_flight > was.in_flight, 3000));
    const seen = await waitFor(async () => {
      const s = await mockControl(mock, '/_mock/stats');
      return s.abandoned > was.abandoned && s;
    }, 3000);
    const after = seen ? Date.now() - gone.left : null;
    check(seen && after < 1000 && gone.got === '',
      `client disconnect, ${label}: the upstream call was cancelled after ${after} ms (the provider held it 5 s), nothing written (${JSON.stringify(gone.got)})`);
    await slotFree(label, dialect);
    const now = await mockControl(mock, '/_mock/stats');
    check(now.by_dialect[dialect] === was.by_dialect[dialect] + 1,
      `client disconnect, ${label}: not retried (${dialect} calls ${was.by_dialect[dialect]} -> ${now.by_dialect[dialect]})`);
  }
  // The client leaves while its call waits between two attempts (the provider's 500 with a
  // Retry-After of 4 s, which lps waits out): non-streamed (the route's own first attempt,
  // handed to the provider actor for the wait) and streamed (the actor's). The call ends at
  // once, not when its next attempt was due: the gate's slot is free within a second and the
  // mock sees no second attempt.
  for (const [label, model, dialect, stream] of [
    ['non-streamed', 'gpt-4o-mini-2024-07-18', 'openai', false],
    ['streamed', 'claude-haiku-4-5-20251001', 'anthropic', true]]) {
    const was = await mockControl(mock, '/_mock/stats');
    await fault(dialect, { kind: 'status', status: 500, retry_after: '4' });
    const body = JSON.parse(request(model));
    body.stream = stream;
    let waiting = null;
    const gone = await postAndLeave(lps, '/v1/chat/completions', JSON.stringify(body), key, async () => {
      await waitFor(async () => (await mockControl(mock, '/_mock/stats')).by_dialect[dialect] > was.by_dialect[dialect], 3000);
      await new Promise((done) => setTimeout(done, 300)); // lps has read the 500 and waits
      waiting = (await keyUsage(lps, admin)).providers?.find((p) => p.provider === dialect)?.inflight;
    });
    const free = await waitFor(async () => {
      const usage = await keyUsage(lps, admin);
      return usage.providers?.find((p) => p.provider === dialect)?.inflight === 0;
    }, 3000);
    const after = Date.now() - gone.left;
    check(waiting === 1 && free && after < 1000,
      `client disconnect between attempts, ${label}: the call waited (inflight ${waiting}) and its slot was free ${after} ms after the client left (the retry was due 4 s after the 500)`);
    await new Promise((done) => setTimeout(done, 4500 - after));
    const now = await mockControl(mock, '/_mock/stats');
    check(now.by_dialect[dialect] === was.by_dialect[dialect] + 1 && gone.got === '',
      `client disconnect between attempts, ${label}: no further attempt (${dialect} calls ${was.by_dialect[dialect]} -> ${now.by_dialect[dialect]}), nothing written`);
  }

  const metrics = await (await fetch(`${lps}/metrics`)).text();
  check(/llm_provider_gateway_requests_total\{provider="anthropic",model="claude-haiku-4-5-20251001",status_code="499",queue_processing_mode="gateway"\} [1-9]/.test(metrics)
    && /llm_provider_gateway_requests_total\{provider="openai",model="gpt-4o-mini-2024-07-18",status_code="499",queue_processing_mode="gateway"\} [1-9]/.test(metrics),
  'client disconnect: metrics count the calls as 499 (client closed request)');

  async function slotFree(label, provider) {
    const inflight = await waitFor(async () => {
      const usage = await keyUsage(lps, admin);
      return usage.providers?.find((p) => p.provider === provider)?.inflight === 0;
    }, 2000);
    check(inflight, `client disconnect, ${label}: the gate's slot is free (${provider} inflight 0)`);
  }
}
