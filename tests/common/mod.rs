//! Helpers for end-to-end tests: run the real `pds` binary and talk to it
//! over HTTP on 127.0.0.1.
//!
//! Each server runs in its own temporary directory with its own data
//! directory and an ephemeral port (`PDS_PORT=0`); the port is read from the
//! `listening on http://IP:PORT` log line. The child gets a clean environment
//! (only what a test passes, plus PATH and RUST_LOG), so a developer's own
//! PDS_* variables cannot change the outcome.

// Each test file compiles this module separately and uses a different part of it.
#![allow(dead_code)]

pub mod did_host;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// How long a server may take to start. Generous: CI machines are slow and shared.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a stopping or failing server may take to exit.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(30);

/// The marker the server logs once it accepts connections (see src/server.rs).
const LISTENING: &str = "listening on http://";

pub fn pds_binary() -> &'static str {
    env!("CARGO_BIN_EXE_pds")
}

/// The `pds.toml` shipped at the repository root: the dev setup.
pub fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pds.toml")
}

/// A `pds` command with a clean environment, run in `dir`.
pub fn pds_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(pds_binary());
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    command
}

/// What a command that ran to its end printed, and how it exited.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `pds <args>` to completion in a fresh temporary directory.
pub fn run_pds(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let dir = TempDir::new().expect("temp dir");
    run_pds_in(dir.path(), args, env)
}

pub fn run_pds_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Finished {
    let mut child = pds_command(dir, args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn pds");
    let stdout = drain(child.stdout.take().expect("stdout"));
    let stderr = drain(child.stderr.take().expect("stderr"));
    let status = wait_with_timeout(&mut child, EXIT_TIMEOUT)
        .unwrap_or_else(|| panic!("pds {args:?} did not exit within {EXIT_TIMEOUT:?}"));
    Finished {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

fn drain(mut stream: impl std::io::Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for pds") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A running `pds serve`. Killed when dropped, if still running.
pub struct TestServer {
    child: Child,
    /// The address the server bound.
    pub addr: SocketAddr,
    /// The server's working directory; `data/` inside it is the data directory.
    pub dir: TempDir,
    log: Arc<Mutex<Vec<String>>>,
}

/// How to start a [`TestServer`].
pub struct ServerOptions<'a> {
    /// `--config` file; `None` runs with built-in defaults.
    pub config: Option<PathBuf>,
    /// Extra environment variables, applied after the defaults below.
    pub env: Vec<(&'a str, &'a str)>,
    /// Reuse this working directory (to restart on the same data).
    pub dir: Option<TempDir>,
}

impl Default for ServerOptions<'_> {
    fn default() -> Self {
        ServerOptions {
            config: Some(shipped_config()),
            env: Vec::new(),
            dir: None,
        }
    }
}

impl TestServer {
    /// Starts the dev setup (the shipped `pds.toml`) on an ephemeral port.
    pub fn start() -> TestServer {
        TestServer::start_with(ServerOptions::default())
    }

    pub fn start_with(options: ServerOptions<'_>) -> TestServer {
        let dir = options
            .dir
            .unwrap_or_else(|| TempDir::new().expect("temp dir"));
        let data = dir.path().join("data");
        let data = data.to_str().expect("utf-8 temp path").to_string();
        let mut env = vec![("PDS_PORT", "0"), ("PDS_DATA_DIRECTORY", data.as_str())];
        env.extend(options.env.iter().copied());
        let config = options
            .config
            .map(|p| p.to_str().expect("utf-8 path").to_string());
        let mut args = vec!["serve"];
        if let Some(config) = &config {
            args.extend(["--config", config.as_str()]);
        }
        let mut child = pds_command(dir.path(), &args, &env)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn pds serve");

        // Both streams feed one channel of lines; all lines are also kept for
        // failure messages.
        let log = Arc::new(Mutex::new(Vec::new()));
        let (lines_tx, lines) = mpsc::channel::<String>();
        forward_lines(
            child.stdout.take().expect("stdout"),
            lines_tx.clone(),
            log.clone(),
        );
        forward_lines(child.stderr.take().expect("stderr"), lines_tx, log.clone());

        let deadline = Instant::now() + START_TIMEOUT;
        let addr = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok(line) => {
                    if let Some(addr) = parse_listening_line(&line) {
                        break addr;
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "pds serve did not report its address within {START_TIMEOUT:?}; output:\n{}",
                        log.lock().unwrap().join("\n")
                    );
                }
            }
        };
        TestServer {
            child,
            addr,
            dir,
            log,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM and waits for the exit. Returns the status and the
    /// working directory (to restart on the same data).
    /// Kills the server with SIGKILL (no chance to clean up), as a crash or power cut would,
    /// and hands back its working directory for a restart.
    pub fn kill_hard(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, TempDir::new().expect("temp dir"))
    }

    pub fn terminate(mut self) -> (ExitStatus, TempDir) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM failed");
        let status = wait_with_timeout(&mut self.child, EXIT_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "pds did not exit within {EXIT_TIMEOUT:?} of SIGTERM; output:\n{}",
                self.log()
            )
        });
        // Moving the directory out of a Drop type: swap in an empty one.
        let dir = std::mem::replace(&mut self.dir, TempDir::new().expect("temp dir"));
        (status, dir)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn forward_lines(
    stream: impl std::io::Read + Send + 'static,
    lines: mpsc::Sender<String>,
    log: Arc<Mutex<Vec<String>>>,
) {
    use std::io::BufRead;
    thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            log.lock().unwrap().push(line.clone());
            // The receiver is gone once the server has started; keep logging.
            let _ = lines.send(line);
        }
    });
}

/// Finds the bound address in a `listening on http://IP:PORT` line, in the
/// text or the JSON log format.
pub fn parse_listening_line(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '"')
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Sends `request` as is over a fresh connection and returns everything the
/// server answers until it closes (so send `Connection: close`).
pub fn raw_http(addr: SocketAddr, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read response");
    String::from_utf8_lossy(&response).into_owned()
}

/// An HTTP client that only ever goes where it is told (no proxies).
pub fn http() -> reqwest::blocking::Client {
    // reqwest is built with rustls but no default crypto provider (the server's crates pick ring
    // explicitly); the tests' client takes ring as the process default.
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// A PLC directory on an ephemeral loopback port, for the life of the test.
pub struct LocalPlc {
    pub url: String,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

/// Serves `app` on an ephemeral loopback port from a runtime of its own (kept alive by the
/// returned runtime): the test stand-ins for other services (a DID directory, a did:web host, an
/// AppView, a collector).
pub fn serve_on_loopback(app: axum::Router) -> (SocketAddr, tokio::runtime::Runtime) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move { axum::serve(listener, app).await });
    (addr, runtime)
}

impl LocalPlc {
    pub fn start() -> LocalPlc {
        let dir = tempfile::tempdir().unwrap();
        let store = pds_plc::store::Store::open(&dir.path().join("plc.sqlite")).unwrap();
        let (addr, runtime) = serve_on_loopback(pds_plc::server::router(store));
        LocalPlc {
            url: format!("http://{addr}"),
            _dir: dir,
            _runtime: runtime,
        }
    }
}

/// POSTs `body` as JSON to `/xrpc/<nsid>` (with a Bearer token if given); the status and the
/// JSON answer (`Null` if the body is not JSON).
pub fn post(server: &TestServer, nsid: &str, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http()
        .post(server.url(&format!("/xrpc/{nsid}")))
        .json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// GETs `/xrpc/<path_and_query>` (an NSID, optionally with `?params`); the status and the JSON
/// answer (`Null` if the body is not JSON).
pub fn get(server: &TestServer, path_and_query: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = http().get(server.url(&format!("/xrpc/{path_and_query}")));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().unwrap();
    let status = res.status().as_u16();
    (status, res.json().unwrap_or(Value::Null))
}

/// The code of the last account-deletion e-mail to `to`, as the dev-mode mailer logged it
/// (`XXXXX-XXXXX`).
pub fn deletion_code(server: &TestServer, to: &str) -> String {
    mailed_code(server, to, "Account Deletion Request").expect("a deletion e-mail with a code")
}

/// The `XXXXX-XXXXX` code in the last e-mail to `to` whose log line mentions `subject`, as the
/// dev-mode mailer logged it; `None` if there is none.
pub fn mailed_code(server: &TestServer, to: &str, subject: &str) -> Option<String> {
    // The server logs the mail before it answers, but the line reaches this process through a
    // reader thread: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let log = server.log();
        let line = log.lines().rev().find(|l| {
            l.contains("e-mail not sent") && l.contains(&format!("to={to} ")) && l.contains(subject)
        });
        if let Some(line) = line {
            return code_in(line);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The code in a message: `XXXXX-XXXXX`, upper-case base32.
pub fn code_in(text: &str) -> Option<String> {
    let is_code_char = |c: u8| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c);
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(10)).find_map(|i| {
        let w = &bytes[i..i + 11];
        let shaped = w[..5].iter().all(|&c| is_code_char(c))
            && w[5] == b'-'
            && w[6..].iter().all(|&c| is_code_char(c));
        let bounded = (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
            && bytes.get(i + 11).is_none_or(|c| !c.is_ascii_alphanumeric());
        (shaped && bounded).then(|| String::from_utf8(w.to_vec()).unwrap())
    })
}

/// The password of the accounts [`create_account`] makes.
pub const PASSWORD: &str = "hunter22hunter22";

/// An account made by [`create_account`].
pub struct Account {
    pub did: String,
    pub email: String,
    pub token: String,
}

/// A new account `<name>.test` with e-mail `<name>@example.com` and [`PASSWORD`].
pub fn create_account(server: &TestServer, name: &str) -> Account {
    let email = format!("{name}@example.com");
    let (status, body) = post(
        server,
        "com.atproto.server.createAccount",
        None,
        serde_json::json!({"handle": format!("{name}.test"), "email": email, "password": PASSWORD}),
    );
    assert_eq!(status, 200, "{body}");
    Account {
        did: body["did"].as_str().unwrap().to_owned(),
        email,
        token: body["accessJwt"].as_str().unwrap().to_owned(),
    }
}

/// The account's repo signing key as its DID document in the embedded did:plc directory
/// publishes it: what a relay verifies commits with.
pub fn plc_signing_key(server: &TestServer, did: &str) -> pds_crypto::PublicKey {
    let doc: Value = http()
        .get(server.url(&format!("/plc/{did}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let method = doc["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"].as_str().unwrap().ends_with("#atproto"))
        .expect("an #atproto verification method");
    pds_crypto::PublicKey::from_multikey(method["publicKeyMultibase"].as_str().unwrap()).unwrap()
}

/// A firehose subscription (see [`subscribe`]).
pub type Socket = tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>;

/// A WebSocket to `subscribeRepos`, from `cursor` or live.
pub fn subscribe(server: &TestServer, cursor: Option<i64>) -> Socket {
    let query = cursor.map(|c| format!("?cursor={c}")).unwrap_or_default();
    let url = format!(
        "ws://{}/xrpc/com.atproto.sync.subscribeRepos{query}",
        server.addr
    );
    let (socket, response) = tungstenite::connect(url).expect("WebSocket handshake");
    assert_eq!(response.status().as_u16(), 101);
    if let tungstenite::stream::MaybeTlsStream::Plain(stream) = socket.get_ref() {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
    }
    socket
}

/// The next frame, or `None` once the server closed the stream.
pub fn next_frame(socket: &mut Socket) -> Option<pds_event_stream::DecodedFrame> {
    loop {
        match socket.read() {
            Ok(tungstenite::Message::Binary(bytes)) => {
                return Some(pds_event_stream::decode_frame(&bytes).expect("a frame"));
            }
            Ok(tungstenite::Message::Close(_)) => return None,
            Ok(_) => continue,
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                return None;
            }
            Err(e) => panic!("reading the firehose: {e}"),
        }
    }
}

/// The code of the last PLC-operation e-mail (`requestPlcOperationSignature`) to `to`, as the
/// dev-mode mailer logged it (`XXXXX-XXXXX`); `None` if no such mail was logged.
pub fn plc_operation_code(server: &TestServer, to: &str) -> Option<String> {
    mailed_code(server, to, "PLC Update Operation Requested")
}

/// The first of the next few frames that `wanted` accepts. A live subscription can begin with
/// events committed just before it (the hub had not handed them out yet); tests that subscribe
/// after writing skip those.
pub fn next_frame_where(
    socket: &mut Socket,
    wanted: impl Fn(&pds_event_stream::DecodedFrame) -> bool,
) -> pds_event_stream::DecodedFrame {
    for _ in 0..20 {
        let frame = next_frame(socket).expect("the stream ended early");
        if wanted(&frame) {
            return frame;
        }
    }
    panic!("the expected frame did not come");
}
