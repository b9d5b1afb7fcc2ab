// The ecosystem's OAuth client, @atproto/oauth-client-node, against our server, with the
// sign-in and consent pages driven in headless Chromium (Debian's, through playwright-core):
// PAR, authorize through the pages, token, a DPoP-authenticated createRecord, a cross-origin
// call from the browser (CORS), refresh, revoke; then a second sign-in that needs no consent
// page (approved before), and a third (prompt=consent) the person denies.
//
// Usage: node oauth-flow.mjs '{"service", "plcUrl", "handle", "password", "screenshots",
// "chromium"}'. Prints "OK <did>" on success; "FAIL: ..." and a non-zero exit otherwise.
import { createServer } from 'node:http'
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeOAuthClient, requestLocalLock } from '@atproto/oauth-client-node'
import { Agent } from '@atproto/api'
import { chromium } from 'playwright-core'

const config = JSON.parse(process.argv[2] ?? '{}')
for (const key of ['service', 'plcUrl', 'handle', 'password', 'screenshots']) {
  if (!config[key]) throw new Error(`usage: node oauth-flow.mjs '{"service", "plcUrl", "handle", "password", "screenshots"}' (missing ${key})`)
}
const fail = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1) }
const check = (cond, msg) => { if (!cond) fail(msg) }
mkdirSync(config.screenshots, { recursive: true })

// The app's redirect URI: a loopback server that hands each callback's query to whoever waits.
let onCallback = null
const callbackServer = createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1')
  res.writeHead(200, { 'content-type': 'text/plain' }).end('You can close this window.')
  if (url.pathname === '/callback' && onCallback) onCallback(url.searchParams)
})
await new Promise((resolve) => callbackServer.listen(0, '127.0.0.1', resolve))
const redirectUri = `http://127.0.0.1:${callbackServer.address().port}/callback`
const scope = 'atproto transition:generic'

// A loopback development client: its metadata is implied by its id, never fetched.
const clientId = `http://localhost?redirect_uri=${encodeURIComponent(redirectUri)}&scope=${encodeURIComponent(scope)}`
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
  handleResolver: config.service,
  plcDirectoryUrl: config.plcUrl,
  requestLock: requestLocalLock,
})

const browser = await chromium.launch({
  executablePath: config.chromium ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const profile = mkdtempSync(join(tmpdir(), 'oauth-chromium-'))

/**
 * Opens the authorization URL, signs in, and presses `button` on the consent page; with no
 * `button`, the server must go straight back to the app (the account approved it before).
 */
async function throughThePages (url, button, shots) {
  const callback = new Promise((resolve) => { onCallback = resolve })
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(url.toString())
  const identifier = page.getByLabel('Handle or email')
  check(await identifier.inputValue() === config.handle, 'login_hint prefills the identifier field')
  const password = page.getByLabel('Password')
  await password.fill(config.password)
  if (shots) await page.screenshot({ path: join(config.screenshots, 'signin.png'), fullPage: true })
  await password.press('Enter')
  if (button) {
    await page.getByRole('heading', { name: /Authorize/ }).waitFor({ timeout: 15_000 })
    check(await page.getByRole('button', { name: 'Deny' }).isVisible(), 'the consent page has a Deny button')
    if (shots) await page.screenshot({ path: join(config.screenshots, 'consent.png'), fullPage: true })
    await page.getByRole('button', { name: button }).click()
  }
  const params = await Promise.race([
    callback,
    new Promise((_, reject) => setTimeout(() => reject(new Error('no callback within 15 s')), 15_000)),
  ])
  await context.close()
  return params
}

try {
  // 1. PAR (with DPoP) and the authorization URL.
  const url = await client.authorize(config.handle, { scope })
  check(url.pathname === '/oauth/authorize', `authorization URL ${url}`)
  check(url.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'), 'the URL carries a pushed request')

  // 2. The pages, then the code for tokens.
  const params = await throughThePages(url, 'Authorize', true)
  check(params.get('iss') === new URL(config.service).origin, `iss ${params.get('iss')}`)
  const { session } = await client.callback(params)
  const did = session.did
  check(did.startsWith('did:plc:'), `session DID ${did}`)

  // 3. A DPoP-authenticated write and read through @atproto/api.
  const agent = new Agent(session)
  const created = await agent.com.atproto.repo.createRecord({
    repo: did,
    collection: 'app.bsky.feed.post',
    record: { $type: 'app.bsky.feed.post', text: 'Posted with OAuth from @atproto/oauth-client-node', createdAt: new Date().toISOString() },
  })
  check(created.data.uri.startsWith(`at://${did}/app.bsky.feed.post/`), `createRecord ${created.data.uri}`)
  const rkey = created.data.uri.split('/').pop()
  const read = await agent.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey })
  check(read.data.cid === created.data.cid, 'getRecord returns the record just written')

  // 3b. Web apps call the server from their own origin: the CORS preflight must allow the
  // Authorization and DPoP headers, and the challenge and the nonce of the answer must be
  // readable by the app.
  {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`http://127.0.0.1:${callbackServer.address().port}/`)
    const seen = await page.evaluate(async (url) => {
      try {
        const r = await fetch(url, { headers: { Authorization: 'DPoP not-a-token', DPoP: 'not-a-proof' } })
        return { status: r.status, challenge: r.headers.get('www-authenticate'), nonce: r.headers.get('dpop-nonce') }
      } catch (e) { return { error: String(e) } }
    }, `${config.service}/xrpc/com.atproto.server.getSession`)
    check(seen.status === 401 && seen.challenge?.startsWith('DPoP') && seen.nonce,
      `a cross-origin call with Authorization and DPoP headers: ${JSON.stringify(seen)}`)
    await context.close()
  }

  // 4. A refresh: new tokens, and they work.
  const before = await session.getTokenInfo(false)
  const after = await session.getTokenInfo(true)
  check(after.expiresAt && before.expiresAt && after.expiresAt >= before.expiresAt, 'refresh gives a token that lasts at least as long')
  const restored = await client.restore(did, false)
  const again = await new Agent(restored).com.atproto.repo.createRecord({
    repo: did,
    collection: 'app.bsky.feed.post',
    record: { $type: 'app.bsky.feed.post', text: 'After a refresh', createdAt: new Date().toISOString() },
  })
  check(again.data.uri.startsWith(`at://${did}/`), 'a write after the refresh works')

  // 5. Sign out: the server revokes the grant; the session is gone, and the old handler fails.
  const oldHandler = restored
  await restored.signOut()
  let restoredAfterRevoke = true
  try { await client.restore(did) } catch { restoredAfterRevoke = false }
  check(!restoredAfterRevoke, 'the session cannot be restored after signOut')
  const raw = await oldHandler.fetchHandler('/xrpc/com.atproto.server.getSession', { method: 'GET' }).catch((e) => ({ status: 'error', e }))
  check(raw.status === 401 || raw.status === 'error', `the revoked token is refused (got ${raw.status})`)

  // 6. Signing in to the same app again: the password, then straight back (approved before).
  const url3 = await client.authorize(config.handle, { scope })
  const { session: second } = await client.callback(await throughThePages(url3, null, false))
  check(second.did === did, 'a second sign-in without the consent page')

  // 7. The app asks for the consent page (prompt=consent), and the person denies.
  const url2 = await client.authorize(config.handle, { scope, prompt: 'consent' })
  const denied = await throughThePages(url2, 'Deny', false)
  check(denied.get('error') === 'access_denied', `deny answers access_denied (got ${denied.get('error')})`)
  let threw = null
  try { await client.callback(denied) } catch (e) { threw = e }
  check(threw?.params?.get?.('error') === 'access_denied', `callback reports the denial (${threw})`)

  console.log(JSON.stringify({ did, post: created.data.uri, refreshed: true, revoked: true, denied: true }))
  console.log(`OK ${did}`)
} catch (e) {
  fail(e?.stack ?? String(e))
} finally {
  await browser.close()
  rmSync(profile, { recursive: true, force: true })
  callbackServer.close()
}
