// Drives the official @nymproject/mix-tunnel client (unmodified) in headless Chromium.
//
// Usage: node driver.mjs <config.json>
// The config names the local network (directory port, gateway, IPR, demo URLs); see
// test_official_client.py. Output: one JSON line per stage on stdout
// ({"stage", "ok", "ms", ...}); the browser/worker console goes to config.logFile.
// Stages run in order; a failed stage stops the ones that depend on it, the rest still run.

import { createServer } from 'node:http';
import { readFileSync, readdirSync, appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const cfg = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const logFile = cfg.logFile || '/dev/null';
const log = (line) => appendFileSync(logFile, `${new Date().toISOString()} ${line}\n`);
const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n');

// --- the page, served on loopback (localhost is a secure context) ---------------------------
const files = {
  '/': ['text/html', readFileSync(join(here, 'index.html'))],
  '/mix-tunnel.js': [
    'text/javascript',
    readFileSync(join(here, 'node_modules/@nymproject/mix-tunnel/dist/esm/index.js')),
  ],
};
const server = createServer((req, res) => {
  if (req.url === '/favicon.ico') { res.writeHead(204); res.end(); return; }
  const f = files[req.url.split('?')[0]];
  if (!f) { res.writeHead(404); res.end(); return; }
  res.writeHead(200, { 'content-type': f[0], 'cache-control': 'no-store' });
  res.end(f[1]);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const pageUrl = `http://localhost:${server.address().port}/`;

// --- the browser ----------------------------------------------------------------------------
// Nym's API host (baked into the wasm) goes to the local directory; everything else that is
// not loopback fails to resolve, so nothing leaves the machine.
const rules = [
  `MAP ${cfg.apiHost || 'validator.nymtech.net'} 127.0.0.1:${cfg.directoryPort}`,
  'MAP * ~NOTFOUND',
  'EXCLUDE localhost',
  'EXCLUDE 127.0.0.1',
].join(', ');
const profile = mkdtempSync(join(tmpdir(), 'smolmix-interop-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: cfg.chromium || '/usr/bin/chromium',
  headless: true,
  ignoreHTTPSErrors: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    `--host-resolver-rules=${rules}`, '--ignore-certificate-errors',
  ],
});
const apiRequests = [];
context.on('request', (r) => {
  const u = r.url();
  if (u.startsWith(pageUrl)) return;
  apiRequests.push(`${r.method()} ${u}`);
  log(`REQUEST ${r.method()} ${u}`);
});
context.on('requestfailed', (r) => log(`REQUESTFAILED ${r.url()} ${r.failure()?.errorText}`));
context.on('response', (r) => log(`RESPONSE ${r.status()} ${r.url()}`));
const page = context.pages()[0] || (await context.newPage());
page.on('console', (m) => log(`CONSOLE ${m.type()} ${m.text()}`));
page.on('pageerror', (e) => log(`PAGEERROR ${e}`));
page.on('websocket', (ws) => {
  log(`WEBSOCKET ${ws.url()}`);
  ws.on('close', () => log(`WEBSOCKET-CLOSED ${ws.url()}`));
});

// CPU seconds of this driver and every process below it (chromium, its renderer and the
// worker running the wasm client), from /proc; 0 where /proc is missing.
function treeCpuSeconds() {
  const parent = new Map();
  const ticks = new Map();
  let names = [];
  try { names = readdirSync('/proc').filter((n) => /^\d+$/.test(n)); } catch { return 0; }
  for (const pid of names) {
    let stat;
    try { stat = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { continue; }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    parent.set(Number(pid), Number(f[1]));
    ticks.set(Number(pid), Number(f[11]) + Number(f[12])); // utime + stime
  }
  let total = 0;
  for (const [pid, t] of ticks) {
    for (let p = pid; p > 1; p = parent.get(p) ?? 0) {
      if (p === process.pid) { total += t; break; }
    }
  }
  return total / 100; // USER_HZ
}

const withTimeout = (promise, ms, what) => Promise.race([
  promise,
  new Promise((_, bad) => setTimeout(() => bad(new Error(`${what}: timed out after ${ms} ms`)), ms)),
]);

const results = {};
const selected = cfg.stages
  ? new Set(['page', 'ready', ...cfg.stages, ...(cfg.extraFetches || []).map((x) => x.name), ...(cfg.optional || [])])
  : null;
async function stage(name, needs, ms, fn) {
  if (selected && !selected.has(name)) return;
  const missing = needs.filter((n) => !results[n]);
  if (missing.length) {
    emit({ stage: name, ok: false, skipped: true, reason: `needs ${missing.join(', ')}` });
    return;
  }
  if (cfg.announceStages) emit({ starting: name });
  const t0 = performance.now();
  try {
    const value = await withTimeout(fn(), ms, name);
    const elapsed = performance.now() - t0;
    results[name] = true;
    emit({ stage: name, ok: true, ms: Math.round(elapsed * 10) / 10, ...value });
  } catch (e) {
    const elapsed = performance.now() - t0;
    emit({ stage: name, ok: false, ms: Math.round(elapsed), error: String(e?.message || e) });
  }
  log(`STAGE ${name} done`);
}

const T = cfg.timeouts || {};
await stage('page', [], 30000, async () => {
  await page.goto(pageUrl);
  await page.waitForFunction(() => window.mtLoaded === true, null, { timeout: 20000 });
  return {};
});

const setupOpts = {
  preferredGateway: cfg.gateway,
  preferredIpr: cfg.ipr,
  forceTls: false,
  disableCoverTraffic: !!cfg.disableCoverTraffic,
  disablePoissonTraffic: !!cfg.disablePoissonTraffic,
  primaryDns: cfg.dns,
  debug: true,
};
await stage('ready', ['page'], T.ready || 60000, async () => {
  await page.evaluate((o) => window.mt.setupMixTunnel(o), setupOpts);
  const state = await page.evaluate(() => window.mt.getTunnelState());
  if (state.state !== 'ready') throw new Error(`state after setup: ${JSON.stringify(state)}`);
  return { state: state.state };
});

// mixFetch in the page: body length, sha256 (WebCrypto) and the first bytes as text.
// `upload` > 0 sends that many pseudo-random bytes as a POST body (a Uint8Array).
async function fetchStage(url, upload = 0, expectStatus = 200) {
  const cpu0 = treeCpuSeconds();
  const r = await page.evaluate(async ({ u, upload }) => {
    const h = await window.mt.getMixTunnel();
    const init = { method: 'GET' };
    if (upload > 0) {
      const body = new Uint8Array(upload);
      for (let i = 0; i < upload; i++) body[i] = (i * 7919 + (i >> 8)) & 0xff;
      const d = await crypto.subtle.digest('SHA-256', body);
      init.method = 'POST';
      init.body = body;
      init.headers = { 'content-type': 'application/octet-stream' };
      window.lastUploadSha = [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
    }
    const t0 = performance.now();
    const res = await h.mixFetch(u, init);
    const ms = performance.now() - t0;
    const digest = await crypto.subtle.digest('SHA-256', res.body);
    const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
    return {
      status: res.status,
      length: res.body.length,
      sha256: hex,
      headers: res.headers,
      head: new TextDecoder().decode(res.body.slice(0, 200)),
      fetch_ms: Math.round(ms * 10) / 10,
      upload_sha256: upload > 0 ? window.lastUploadSha : undefined,
    };
  }, { u: url, upload });
  if (expectStatus && r.status !== expectStatus) throw new Error(`HTTP ${r.status}`);
  r.cpu_s = Math.round((treeCpuSeconds() - cpu0) * 100) / 100;
  return r;
}

await stage('dns', ['ready'], T.dns || 30000, async () => {
  const address = await page.evaluate(async (name) => {
    const h = await window.mt.getMixTunnel();
    return await h.mixDNS(name);
  }, cfg.dnsName);
  return { name: cfg.dnsName, address };
});

await stage('fetch_page', ['ready'], T.fetch || 60000, () => fetchStage(cfg.pageUrl));
await stage('fetch_1mib', ['ready'], T.big || 120000, () => fetchStage(cfg.bigUrl));

await stage('websocket', ['ready'], T.ws || 30000, async () => {
  return await page.evaluate(async ({ url, message }) => {
    const h = await window.mt.getMixTunnel();
    const events = [];
    let wake = null;
    const onEvent = window.mt.proxy((id, type, data) => {
      events.push({ type, data: typeof data === 'string' ? data : String(data) });
      if (wake) wake();
    });
    const until = async (pred) => {
      while (!events.some(pred)) await new Promise((ok) => { wake = ok; });
    };
    const t0 = performance.now();
    const handle = await h.mixWebSocket(url, undefined, onEvent);
    await until((e) => e.type === 'open' || e.type === 'error' || e.type === 'close');
    const opened = performance.now() - t0;
    const t1 = performance.now();
    await h.wsSend(handle, message);
    await until((e) => e.type === 'text' || e.type === 'error' || e.type === 'close');
    const echoMs = performance.now() - t1;
    const text = events.find((e) => e.type === 'text');
    await h.wsClose(handle, 1000, 'done');
    if (!text) throw new Error(`no echo: ${JSON.stringify(events)}`);
    return { echo: text.data, open_ms: Math.round(opened), echo_ms: Math.round(echoMs), events };
  }, { url: cfg.wsUrl, message: cfg.wsMessage || 'hello from the official client' });
});

// Optional stages (cfg.optional): concurrent fetches on one tunnel; a binary ws echo.
const optional = new Set(cfg.optional || []);
if (optional.has('parallel')) {
  await stage('parallel', ['ready'], 120000, async () => {
    return await page.evaluate(async (url) => {
      const h = await window.mt.getMixTunnel();
      const t0 = performance.now();
      const all = await Promise.all([0, 1, 2, 3].map(() => h.mixFetch(url, { method: 'GET' })));
      const out = [];
      for (const r of all) {
        const d = await crypto.subtle.digest('SHA-256', r.body);
        out.push({ status: r.status, length: r.body.length,
          sha256: [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('') });
      }
      return { results: out, total_ms: Math.round(performance.now() - t0) };
    }, cfg.parallelUrl);
  });
}
if (optional.has('ws_binary')) {
  await stage('ws_binary', ['ready'], 60000, async () => {
    return await page.evaluate(async ({ url, size }) => {
      const h = await window.mt.getMixTunnel();
      const events = [];
      let wake = null;
      const onEvent = window.mt.proxy((id, type, data) => {
        events.push({ type, data });
        if (wake) wake();
      });
      const until = async (pred) => {
        while (!events.some(pred)) await new Promise((ok) => { wake = ok; });
      };
      const handle = await h.mixWebSocket(url, undefined, onEvent);
      await until((e) => e.type !== 'text' && e.type !== 'binary');
      const msg = new Uint8Array(size);
      for (let i = 0; i < size; i++) msg[i] = (i * 31) & 0xff;
      await h.wsSend(handle, msg);
      await until((e) => e.type === 'binary' || e.type === 'error' || e.type === 'close');
      const got = events.find((e) => e.type === 'binary');
      await h.wsClose(handle, 1000, 'done');
      if (!got) throw new Error(`no echo: ${JSON.stringify(events.map((e) => e.type))}`);
      const bytes = new Uint8Array(got.data);
      const same = bytes.length === size && bytes.every((b, i) => b === ((i * 31) & 0xff));
      return { length: bytes.length, same, dataType: Object.prototype.toString.call(got.data) };
    }, { url: cfg.wsUrl, size: cfg.wsBinarySize || 65536 });
  });
}

// Idle for cfg.idleSeconds, then fetch again (the exit IPR drops clients idle for 60 s).
if (optional.has('after_idle')) {
  await stage('after_idle', ['ready'], (cfg.idleSeconds + 60) * 1000, async () => {
    await new Promise((ok) => setTimeout(ok, cfg.idleSeconds * 1000));
    const state = await page.evaluate(() => window.mt.getTunnelState());
    const r = await fetchStage(cfg.pageUrl);
    return { state: state.state, status: r.status, idle_s: cfg.idleSeconds };
  });
}

// Extra fetches (exploration and regression variants): [{name, url, upload, timeoutMs}].
for (const x of cfg.extraFetches || []) {
  await stage(x.name, ['ready'], x.timeoutMs || 60000, () => fetchStage(x.url, x.upload || 0, 0));
}

await stage('disconnect', ['ready'], 20000, async () => {
  await page.evaluate(() => window.mt.disconnectMixTunnel());
  const state = await page.evaluate(() => window.mt.getTunnelState());
  return { state: state.state };
});

// A reload keeps the browser profile: the client finds its stored gateway registration and
// only authenticates (no second register), then fetches again.
await stage('reconnect', ['ready'], T.reconnect || 60000, async () => {
  await page.reload();
  await page.waitForFunction(() => window.mtLoaded === true, null, { timeout: 20000 });
  await page.evaluate((o) => window.mt.setupMixTunnel(o), setupOpts);
  const state = await page.evaluate(() => window.mt.getTunnelState());
  if (state.state !== 'ready') throw new Error(`state after setup: ${JSON.stringify(state)}`);
  const r = await fetchStage(cfg.pageUrl);
  return { state: state.state, status: r.status, length: r.length };
});

emit({ stage: 'summary', api_requests: apiRequests });
await context.close();
server.close();
rmSync(profile, { recursive: true, force: true });
process.exit(0);
