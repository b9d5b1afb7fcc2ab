// Service-proxying load test: how fast a PDS forwards app.bsky.* requests to its AppView.
//
//   node bench/proxy.mjs upstream PORT          # a stand-in AppView on 127.0.0.1:PORT
//   node bench/proxy.mjs load PDS_URL [N] [C]   # N forwarded requests, C at once
//
// The PDS must run with PDS_BSKY_APP_VIEW_URL=http://127.0.0.1:PORT and
// PDS_BSKY_APP_VIEW_DID=did:web:appview.test. The stand-in answers every /xrpc/ request with
// a small JSON body at once, so what is measured is the PDS's own work per request: checking
// the session, minting and signing a service-auth token, forwarding, relaying the answer.
import http from 'node:http'
import { randomBytes } from 'node:crypto'

const [mode, arg, nArg, cArg] = process.argv.slice(2)

if (mode === 'upstream') {
  const body = JSON.stringify({ subject: { did: 'did:plc:x', handle: 'x.test' }, follows: [] })
  http
    .createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
        res.end(body)
      })
    })
    .listen(parseInt(arg, 10), '127.0.0.1')
} else if (mode === 'load') {
  const base = arg.replace(/\/$/, '')
  const total = parseInt(nArg || '4000', 10)
  const conc = parseInt(cArg || '16', 10)
  const describe = await (await fetch(`${base}/xrpc/com.atproto.server.describeServer`)).json()
  const domain = describe.availableUserDomains[0]
  const handle = `p${randomBytes(3).toString('hex')}${domain}`
  const created = await (
    await fetch(`${base}/xrpc/com.atproto.server.createAccount`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ handle, email: `${handle}@example.com`, password: 'proxy-bench-password' }),
    })
  ).json()
  if (!created.accessJwt) throw new Error(`createAccount: ${JSON.stringify(created)}`)
  const headers = { authorization: `Bearer ${created.accessJwt}` }
  const url = `${base}/xrpc/app.bsky.graph.getFollows?actor=${created.did}`
  const one = async () => {
    const res = await fetch(url, { headers })
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`getFollows: ${res.status}`)
  }
  for (let i = 0; i < 200; i++) await one() // warm up
  const latencies = []
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < total) {
        next++
        const s = performance.now()
        await one()
        latencies.push(performance.now() - s)
      }
    }),
  )
  const wall = (performance.now() - t0) / 1000
  latencies.sort((a, b) => a - b)
  const p = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2)
  console.log(`proxied_getFollows_c${conc}=${(total / wall).toFixed(1)} req/s p50=${p(0.5)} ms p99=${p(0.99)} ms`)
} else {
  console.error('usage: proxy.mjs upstream PORT | load PDS_URL [N] [C]')
  process.exit(2)
}
