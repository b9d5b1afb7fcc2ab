//! Relays are asked to crawl the server (`com.atproto.sync.requestCrawl` to each of
//! `PDS_CRAWLERS`), and asked again: at start-up, every interval while no firehose subscriber is
//! connected, not while one is and nothing happens, soon after a write, and again after a relay
//! failed. The relay is a small HTTP server in this test that records each request.
//!
//! The interval is one second (`PDS_CRAWL_INTERVAL_SECS=1`); the server looks every quarter
//! interval. Time bounds are generous: the machine may be shared and slow.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer, http, post};
use serde_json::{Value, json};

/// One request the relay received, and how it answered.
#[derive(Clone, Debug)]
struct Received {
    at: Instant,
    request_line: String,
    content_type: Option<String>,
    body: Value,
    answered: u16,
}

/// A fake relay on 127.0.0.1: records every request; answers with the status set.
struct Relay {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Relay {
    fn start() -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        let (log, answer) = (received.clone(), status.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, answer) = (log.clone(), answer.clone());
                thread::spawn(move || serve_one(stream, &log, &answer));
            }
        });
        Relay {
            addr,
            received,
            status,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until more than `count` requests have arrived; false after `timeout`.
    fn wait_beyond(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.count() > count {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.count() > count
    }
}

/// Reads one HTTP/1.1 request (headers, then a `Content-Length` body), records it, answers,
/// and closes the connection.
fn serve_one(mut stream: TcpStream, log: &Mutex<Vec<Received>>, answer: &AtomicU16) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).into_owned();
    let request_line = head.split("\r\n").next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = bytes[head_end + 4..].to_vec();
    while body.len() < length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let status = answer.load(Ordering::SeqCst);
    log.lock().unwrap().push(Received {
        at: Instant::now(),
        request_line,
        content_type: header("content-type"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        answered: status,
    });
    let reason = if status == 200 { "OK" } else { "Oops" };
    let reply = if status == 200 {
        "{}"
    } else {
        r#"{"error":"InternalServerError"}"#
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
        reply.len()
    );
}

/// A firehose subscriber: a WebSocket to `subscribeRepos`, with no cursor.
fn subscribe(server: &TestServer) -> tungstenite::WebSocket<TcpStream> {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let url = format!("ws://{}/xrpc/com.atproto.sync.subscribeRepos", server.addr);
    let (socket, response) = tungstenite::client(url, stream).expect("WebSocket handshake");
    assert_eq!(response.status().as_u16(), 101);
    socket
}

/// Closes the WebSocket and waits for the server's side of the close.
fn unsubscribe(mut socket: tungstenite::WebSocket<TcpStream>) {
    let _ = socket.close(None);
    while socket.read().is_ok() {}
}

fn describe(requests: &[Received], since: Instant) -> String {
    requests
        .iter()
        .map(|r| {
            format!(
                "  {:>6} ms  {} -> {}  {}",
                r.at.saturating_duration_since(since).as_millis(),
                r.request_line,
                r.answered,
                r.body
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn relays_are_asked_to_crawl_and_asked_again() {
    let relay = Relay::start();
    let relay_url = relay.url();
    let started = Instant::now();
    let server = TestServer::start_with(ServerOptions {
        env: vec![
            ("PDS_CRAWLERS", relay_url.as_str()),
            ("PDS_CRAWL_INTERVAL_SECS", "1"),
        ],
        ..Default::default()
    });
    let report = |what: &str| {
        format!(
            "{what}\nrequests (time since start):\n{}\nserver log:\n{}",
            describe(&relay.received(), started),
            server.log()
        )
    };

    // At start-up, with this server's public host and port.
    assert!(
        relay.wait_beyond(0, Duration::from_secs(10)),
        "{}",
        report("no crawl request at start-up")
    );
    let first = relay.received()[0].clone();
    assert_eq!(
        first.request_line,
        "POST /xrpc/com.atproto.sync.requestCrawl HTTP/1.1"
    );
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        first.body,
        json!({"hostname": format!("localhost:{}", server.addr.port())})
    );

    // Nobody subscribed: asked again about once per interval.
    let watch = Duration::from_millis(3500);
    thread::sleep(watch.saturating_sub(first.at.elapsed()));
    let requests = relay.received();
    let idle: Vec<&Received> = requests.iter().filter(|r| r.at > first.at).collect();
    assert!(
        (2..=5).contains(&idle.len()),
        "{}",
        report("with no subscriber, 2 to 5 requests expected in 3.5 intervals")
    );
    let gaps: Vec<Duration> = requests.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps.iter().all(|g| *g >= Duration::from_millis(600)),
        "{}",
        report("at most one request per interval")
    );
    for r in &requests {
        assert_eq!(r.body, first.body);
        assert_eq!(r.request_line, first.request_line);
    }

    // An account to write with. Its creation is news for the relays too, announced within an
    // interval: before the quiet period below starts.
    let (status, account) = post(
        &server,
        "com.atproto.server.createAccount",
        None,
        json!({"handle": "crawled.test", "password": "hunter22hunter22"}),
    );
    assert_eq!(status, 200, "{account}");

    // A relay is connected and nothing happens: it is not asked again.
    let mut socket = subscribe(&server);
    thread::sleep(Duration::from_millis(1500));
    let settled = relay.count();
    // A log-in writes to the database but adds nothing to the firehose: not a reason to ask.
    let (status, body) = post(
        &server,
        "com.atproto.server.createSession",
        None,
        json!({"identifier": "crawled.test", "password": "hunter22hunter22"}),
    );
    assert_eq!(status, 200, "{body}");
    thread::sleep(Duration::from_secs(3));
    assert_eq!(
        relay.count(),
        settled,
        "{}",
        report("a subscriber was connected and nothing reached the firehose, yet requests came")
    );

    // A write: the relays hear about it soon, once.
    let wrote = Instant::now();
    let (status, created) = post(
        &server,
        "com.atproto.repo.createRecord",
        account["accessJwt"].as_str(),
        json!({"repo": account["did"], "collection": "app.bsky.feed.post",
               "record": {"$type": "app.bsky.feed.post", "text": "crawl me", "createdAt": "2024-06-01T12:00:00.000Z"}}),
    );
    assert_eq!(status, 200, "{created}");
    assert!(
        relay.wait_beyond(settled, Duration::from_secs(3)),
        "{}",
        report("no request within ~2 intervals of a write")
    );
    let after_write = relay.received()[settled].clone();
    assert!(after_write.at >= wrote);
    // The subscriber got the write (it really was connected), and nothing more is asked.
    let frame = socket.read().expect("the #commit frame");
    assert!(
        matches!(frame, tungstenite::Message::Binary(_)),
        "{frame:?}"
    );
    thread::sleep(Duration::from_secs(2));
    assert_eq!(
        relay.count(),
        settled + 1,
        "{}",
        report("one request after one write while subscribed")
    );

    // The relay disconnects and fails: the server goes on, and keeps asking.
    relay.status.store(500, Ordering::SeqCst);
    let before_failures = relay.count();
    unsubscribe(socket);
    thread::sleep(Duration::from_millis(3500));
    let failed: Vec<Received> = relay.received()[before_failures..].to_vec();
    assert!(
        failed.len() >= 2 && failed.iter().all(|r| r.answered == 500),
        "{}",
        report("after the subscriber left, a failing relay is asked again and again")
    );
    assert!(
        server
            .log()
            .contains("a relay's requestCrawl failed; retrying later"),
        "{}",
        report("the failure is logged")
    );
    let health = http().get(server.url("/xrpc/_health")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // And once the relay is back, it is asked again.
    relay.status.store(200, Ordering::SeqCst);
    let before_recovery = relay.count();
    assert!(
        relay.wait_beyond(before_recovery, Duration::from_secs(3)),
        "{}",
        report("no request after the relay recovered")
    );
    assert_eq!(relay.received()[before_recovery].answered, 200);
}
