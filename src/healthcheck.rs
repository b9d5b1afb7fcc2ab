//! `pds healthcheck`: asks the local server for `/xrpc/_health`.
//!
//! Made for container health checks, where the runtime image has no curl:
//! a plain HTTP/1.1 GET over a std `TcpStream`, so that no HTTP client
//! library goes into the server binary.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::Config;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Checks the server the configuration describes. `Ok` carries the response
/// body (`{"version": ...}`); `Err` says what went wrong, in one line.
pub fn check(config: &Config) -> Result<String, String> {
    check_addr(local_addr(config))
}

/// The address to reach the server at from this machine: a wildcard bind
/// address (0.0.0.0, ::) is reached through loopback.
pub fn local_addr(config: &Config) -> SocketAddr {
    let ip = match config.server.bind {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, config.server.port)
}

pub fn check_addr(addr: SocketAddr) -> Result<String, String> {
    let fail = |what: &str, e: std::io::Error| format!("{what} http://{addr}: {e}");
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| fail("cannot connect to", e))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| fail("cannot talk to", e))?;
    let request = format!(
        "GET /xrpc/_health HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: pds-healthcheck\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| fail("cannot send to", e))?;
    let mut response = Vec::new();
    // `Connection: close` makes the server end the body with EOF; the health
    // answer is tiny, so a cap keeps a confused peer from feeding us forever.
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .map_err(|e| fail("no answer from", e))?;
    let response = String::from_utf8_lossy(&response);
    let status_line = response.lines().next().unwrap_or_default();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim())
        .unwrap_or_default();
    match status_line.split_whitespace().nth(1) {
        Some("200") => Ok(body.to_string()),
        _ => Err(format!(
            "http://{addr}/xrpc/_health answered {status_line:?} {body}"
        )),
    }
}
