//! The process's own figures, read from `/proc/self` at scrape time (Linux; elsewhere they are
//! left out), under the names Prometheus's client libraries use.

use super::text::{Encoder, Kind};

/// What `/proc/self/stat` says, with the units converted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, in bytes.
    pub virtual_bytes: u64,
    /// Threads.
    pub threads: u64,
}

/// Reads `/proc/self/stat`; `None` where there is none.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // SAFETY: sysconf only reads configuration values.
    let (ticks, page) = unsafe {
        (
            libc::sysconf(libc::_SC_CLK_TCK),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    parse_stat(&stat, u64::try_from(ticks).ok()?, u64::try_from(page).ok()?)
}

/// `/proc/<pid>/stat`: the command name (in parentheses, and it may hold spaces and
/// parentheses itself) ends at the last `)`; the fields after it are numbered from 3 (state).
fn parse_stat(stat: &str, ticks_per_second: u64, page_size: u64) -> Option<ProcessStats> {
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field n (1-based, as in proc(5)) is fields[n - 3].
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    if ticks_per_second == 0 {
        return None;
    }
    let (utime, stime) = (field(14)?, field(15)?);
    Some(ProcessStats {
        cpu_seconds: (utime + stime) as f64 / ticks_per_second as f64,
        threads: field(20)?,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)?.saturating_mul(page_size),
    })
}

/// Open file descriptors: the entries of `/proc/self/fd`.
fn open_fds() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count() as u64)
}

pub fn encode(e: &mut Encoder) {
    if let Some(stats) = read() {
        e.single(
            "process_cpu_seconds_total",
            Kind::Counter,
            "Total user and system CPU time spent in seconds.",
            stats.cpu_seconds,
        );
        e.single(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            stats.resident_bytes,
        );
        e.single(
            "process_virtual_memory_bytes",
            Kind::Gauge,
            "Virtual memory size in bytes.",
            stats.virtual_bytes,
        );
        e.single(
            "process_threads",
            Kind::Gauge,
            "Number of OS threads in the process.",
            stats.threads,
        );
    }
    if let Some(fds) = open_fds() {
        e.single(
            "process_open_fds",
            Kind::Gauge,
            "Number of open file descriptors.",
            fds,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_whose_name_has_spaces_and_parentheses() {
        let stat = "4242 (pds (x) y) S 1 4242 4242 0 -1 4194560 1964 0 0 0 250 50 0 0 20 0 \
                    7 0 123456 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 \
                    17 1 0 0 0 0 0";
        let stats = parse_stat(stat, 100, 4096).unwrap();
        assert_eq!(
            stats,
            ProcessStats {
                cpu_seconds: 3.0,
                resident_bytes: 2560 * 4096,
                virtual_bytes: 104_857_600,
                threads: 7,
            }
        );
        assert_eq!(parse_stat("garbage", 100, 4096), None);
        assert_eq!(parse_stat(stat, 0, 4096), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let stats = read().unwrap();
        assert!(stats.resident_bytes > 0);
        assert!(stats.threads >= 1);
        assert!(open_fds().unwrap() > 0);
    }
}
