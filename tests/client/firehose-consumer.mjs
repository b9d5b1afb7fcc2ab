// The ecosystem's firehose consumer, `Firehose` from @atproto/sync, against our subscribeRepos.
// Commits are authenticated (`unauthenticatedCommits` off): for each op the library checks the
// commit's signature against the key in the account's DID document and the MST proof of the op
// in the event's blocks, and hands on only the ops that verify. Identity events are checked both
// ways (DID document -> handle -> DID). Anything the library rejects reaches `onError`, and this
// script exits 1 with the error.
//
// Usage: node firehose-consumer.mjs '<config JSON>', with
//   service  the server, "ws://127.0.0.1:<port>"
//   plcUrl   the did:plc directory the server registers its accounts with
//   cursor   0 to replay the whole log, or null to start at the next event (live)
//   until    {did, path}: stop once the library hands on an op of that record
//   timeoutMs
// Prints, one per line: `READY` as the subscription opens (its cursor is asked for), `EVENT
// <json>` for each event the library hands on (one per op for a commit, as the library does),
// and at the end `SUMMARY <json>`: the events in order, a commit's ops grouped under its seq.
// Exits 0 once `until` is seen, 3 if the time runs out first (after printing the summary).
import * as http from 'node:http'
import { Firehose } from '@atproto/sync'
import { IdResolver, parseToAtprotoDocument } from '@atproto/identity'

const config = JSON.parse(process.argv[2] ?? 'null')
if (!config?.service || !config?.plcUrl) {
  throw new Error(`usage: node firehose-consumer.mjs '{"service":..., "plcUrl":..., "cursor":..., "until":...}'`)
}
const serviceHttp = config.service.replace(/^ws/, 'http')

// Identity resolution against this machine only. The library's default fetch refuses http and
// loopback (SSRF protection); its documentation says to pass a fetch for a localhost test. A
// handle's `https://<handle>/.well-known/atproto-did` goes to the server with the handle as the
// Host header, as it would reach it through DNS in production (fetch itself cannot set Host).
const localFetch = async (input, init = {}) => {
  const url = new URL(input instanceof Request ? input.url : String(input))
  if (url.protocol === 'https:' && url.pathname === '/.well-known/atproto-did') {
    return wellKnown(url.host, init.signal)
  }
  return fetch(input, init)
}

const wellKnown = (host, signal) =>
  new Promise((resolve, reject) => {
    const req = http.get(`${serviceHttp}/.well-known/atproto-did`, { headers: { host }, signal }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve(new Response(Buffer.concat(chunks), { status: res.statusCode })))
      res.on('error', reject)
    })
    req.on('error', reject)
  })

const idResolver = new IdResolver({ plcUrl: config.plcUrl, fetch: localFetch, timeout: 10_000 })

const events = []
let done = false

const finish = (code) => {
  if (done) return
  done = true
  console.log(`SUMMARY ${JSON.stringify({ events: grouped() })}`)
  process.exit(code)
}

const fail = (err) => {
  if (done) return
  done = true
  const causes = []
  for (let e = err; e; e = e.cause) causes.push(e.stack ?? String(e))
  console.error(`FAIL: ${causes.join('\ncaused by: ')}`)
  if (err?.event) console.error(`the event: ${safeJson(err.event)}`)
  if (err?.value) console.error(`the message: ${safeJson(err.value)}`)
  console.log(`SUMMARY ${JSON.stringify({ events: grouped() })}`)
  process.exit(1)
}

const safeJson = (value) => {
  try {
    return JSON.stringify(value, (_, v) =>
      v instanceof Uint8Array ? `<${v.length} bytes>` : typeof v === 'bigint' ? String(v) : v,
    )
  } catch {
    return String(value)
  }
}

// One summary entry per event the library hands on.
const describe = (evt) => {
  switch (evt.event) {
    case 'create':
    case 'update':
    case 'delete':
      return {
        type: 'commit',
        seq: evt.seq,
        did: evt.did,
        rev: evt.rev,
        commit: evt.commit.toString(),
        op: { action: evt.event, path: `${evt.collection}/${evt.rkey}`, cid: evt.cid ? evt.cid.toString() : null },
      }
    case 'identity': {
      const doc = evt.didDocument ? parseToAtprotoDocument(evt.didDocument) : {}
      return {
        type: 'identity',
        seq: evt.seq,
        did: evt.did,
        // Set only if the library verified it both ways.
        handle: evt.handle ?? null,
        didDocHandle: doc.handle ?? null,
        pds: doc.pds ?? null,
      }
    }
    case 'account':
      return { type: 'account', seq: evt.seq, did: evt.did, active: evt.active, status: evt.status ?? null }
    case 'sync':
      return { type: 'sync', seq: evt.seq, did: evt.did, rev: evt.rev, cid: evt.cid.toString() }
    default:
      return { type: `unknown:${evt.event}`, seq: evt.seq, did: evt.did }
  }
}

// A commit's ops (handed on one by one) under one entry per seq.
const grouped = () => {
  const out = []
  for (const e of events) {
    const last = out[out.length - 1]
    if (e.type === 'commit' && last?.type === 'commit' && last.seq === e.seq) {
      last.ops.push(e.op)
    } else if (e.type === 'commit') {
      const { op, ...rest } = e
      out.push({ ...rest, ops: [op] })
    } else {
      out.push(e)
    }
  }
  return out
}

const firehose = new Firehose({
  service: config.service,
  idResolver,
  unauthenticatedCommits: false,
  unauthenticatedHandles: false,
  // Called as each connection is opened; `undefined` means no cursor (live).
  getCursor: async () => {
    console.log('READY')
    return config.cursor ?? undefined
  },
  handleEvent: async (evt) => {
    const entry = describe(evt)
    events.push(entry)
    console.log(`EVENT ${JSON.stringify(entry)}`)
    const until = config.until
    if (until && entry.type === 'commit' && entry.did === until.did && entry.op.path === until.path) {
      finish(0)
    }
  },
  onError: fail,
})

setTimeout(() => {
  console.error(`TIMEOUT after ${config.timeoutMs} ms without seeing ${JSON.stringify(config.until)}`)
  finish(3)
}, config.timeoutMs ?? 60_000)

firehose.start().catch(fail)
