//! What a long-running account command prints as it goes: one `==> [n/total] step: what` line
//! when a step starts, indented detail lines under it, each flushed at once (a person watching,
//! or a script reading the output line by line, sees where the command is).

use std::io::Write;
use std::time::{Duration, Instant};

/// Prints the steps of one command.
pub struct Progress {
    total: usize,
    /// When a running count (bytes, blobs) was last printed.
    last_count: Option<Instant>,
}

/// How often a running count is printed.
const COUNT_INTERVAL: Duration = Duration::from_millis(500);

impl Progress {
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            last_count: None,
        }
    }

    /// Starts step `n` (1-based), named `name`.
    pub fn step(&mut self, n: usize, name: &str, what: &str) {
        self.last_count = None;
        line(&format!("==> [{n}/{}] {name}: {what}", self.total));
    }

    /// A detail of the current step.
    pub fn detail(&self, text: &str) {
        line(&format!("    {text}"));
    }

    /// A [`Ticker`] for a count kept inside a stream.
    pub fn ticker(&self) -> Ticker {
        Ticker { last: None }
    }

    /// A running count, printed at most every half second unless `last`.
    pub fn count(&mut self, text: impl FnOnce() -> String, last: bool) {
        let now = Instant::now();
        let due = self
            .last_count
            .is_none_or(|at| now.duration_since(at) >= COUNT_INTERVAL);
        if due || last {
            self.last_count = Some(now);
            self.detail(&text());
        }
    }
}

/// Prints a running count from inside a stream (owned, so it can travel with the stream).
pub struct Ticker {
    last: Option<Instant>,
}

impl Ticker {
    /// Prints `text` as a detail line, at most every half second.
    pub fn tick(&mut self, text: impl FnOnce() -> String) {
        let now = Instant::now();
        if self
            .last
            .is_none_or(|at| now.duration_since(at) >= COUNT_INTERVAL)
        {
            self.last = Some(now);
            line(&format!("    {}", text()));
        }
    }
}

fn line(text: &str) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) must not stop the command half-way.
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

/// `bytes` for a person: `512 B`, `1.5 KB`, `12.3 MB`.
pub fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::bytes;

    #[test]
    fn byte_counts_read_as_a_person_writes_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1500), "1.5 KB");
        assert_eq!(bytes(12_345_678), "12.3 MB");
        assert_eq!(bytes(3_000_000_000), "3.0 GB");
    }
}
