// The ecosystem's client library against our server: create an account, log in, post, read the
// post back, list it, delete it. Usage: node atproto-api.mjs <server URL>. Exits non-zero with a
// message on the first thing that does not behave as the library expects.
import { AtpAgent } from '@atproto/api'

const service = process.argv[2]
if (!service) throw new Error('usage: node atproto-api.mjs <server URL>')
const fail = (msg) => { console.error(`FAIL: ${msg}`); process.exit(1) }
const check = (cond, msg) => { if (!cond) fail(msg) }

const agent = new AtpAgent({ service })
const desc = await agent.com.atproto.server.describeServer()
const domain = desc.data.availableUserDomains[0]
check(domain, 'describeServer lists a handle domain')

const handle = `client${Date.now().toString(36).slice(-6)}${domain}`
const password = 'client library password'
await agent.createAccount({ handle, password, email: `${handle}@example.com` })
check(agent.session?.did?.startsWith('did:plc:'), 'createAccount starts a session with a did:plc')
const did = agent.session.did

// A second agent logs in with the handle, as an app would.
const app = new AtpAgent({ service })
await app.login({ identifier: handle, password })
check(app.session.did === did, 'login returns the same DID')

const text = 'Hello from @atproto/api 👋 — posted to a Rust PDS'
const posted = await app.post({ text, createdAt: new Date().toISOString() })
check(posted.uri.startsWith(`at://${did}/app.bsky.feed.post/`), `post URI ${posted.uri}`)
check(posted.cid.startsWith('bafyrei'), `post CID ${posted.cid}`)

const rkey = posted.uri.split('/').pop()
const got = await app.com.atproto.repo.getRecord({ repo: did, collection: 'app.bsky.feed.post', rkey })
check(got.data.value.text === text, 'getRecord returns the text as written')
check(got.data.cid === posted.cid, 'getRecord returns the CID the post got')

const listed = await app.com.atproto.repo.listRecords({ repo: handle, collection: 'app.bsky.feed.post' })
check(listed.data.records.length === 1 && listed.data.records[0].uri === posted.uri, 'listRecords by handle')

// The library refreshes an expired-looking session by itself; force one refresh round-trip.
await app.sessionManager.refreshSession()
const session = await app.com.atproto.server.getSession()
check(session.data.did === did, 'getSession after a refresh')

await app.deletePost(posted.uri)
const after = await app.com.atproto.repo.listRecords({ repo: did, collection: 'app.bsky.feed.post' })
check(after.data.records.length === 0, 'the post is gone after deletePost')

console.log(`OK ${did} ${handle}`)
