//! TIDs (timestamp identifiers) and the clock that issues them.
//!
//! A TID is a 64-bit integer written as 13 characters of "base32-sortable"
//! (`234567abcdefghijklmnopqrstuvwxyz`, 5 bits per character, most
//! significant first). Its layout, high bit to low bit:
//!
//! ```text
//! 0 | 53 bits: microseconds since the UNIX epoch | 10 bits: clock id
//! ```
//!
//! Because the alphabet is in ASCII order and the length is fixed, comparing
//! two TIDs as strings gives the same answer as comparing them as numbers,
//! which is why TIDs work as record keys and as a repository's `rev`.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::SyntaxError;
use crate::string_type::string_type;

const ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";
const LEN: usize = 13;
const CLOCK_ID_BITS: u32 = 10;

/// The largest timestamp a TID can hold (2^53 - 1 µs, in the year 2255).
pub const MAX_TIMESTAMP_MICROS: u64 = (1 << 53) - 1;
/// The largest clock id a TID can hold (10 bits).
pub const MAX_CLOCK_ID: u16 = (1 << CLOCK_ID_BITS) - 1;

/// A syntactically valid TID, e.g. `3jzfcijpj2z2a`.
///
/// Stricter than the spec's reference regex on one point: the spec's regex
/// lets the first character go up to `j`, but a first character past `b`
/// sets the 64-bit value's top bit, which the same spec says is always 0.
/// Such strings are rejected here, so every `Tid` decodes to a timestamp and
/// clock id and orders the same as a string and as a number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tid(String);

string_type!(Tid, validate);

impl std::borrow::Borrow<str> for Tid {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Tid {
    /// Builds a TID from a timestamp and a clock id.
    ///
    /// Only the low 53 bits of `micros` and the low 10 bits of `clock_id`
    /// are used (as in the reference implementations); pass values within
    /// [`MAX_TIMESTAMP_MICROS`] and [`MAX_CLOCK_ID`].
    pub fn from_parts(micros: u64, clock_id: u16) -> Tid {
        let value =
            (micros & MAX_TIMESTAMP_MICROS) << CLOCK_ID_BITS | u64::from(clock_id & MAX_CLOCK_ID);
        Tid::from_u64(value)
    }

    /// The next TID from the process-wide clock ([`TidClock::global`]).
    pub fn now() -> Tid {
        TidClock::global().next()
    }

    /// Microseconds since the UNIX epoch.
    pub fn timestamp_micros(&self) -> u64 {
        self.to_u64() >> CLOCK_ID_BITS
    }

    /// The 10-bit clock id.
    pub fn clock_id(&self) -> u16 {
        (self.to_u64() & u64::from(MAX_CLOCK_ID)) as u16
    }

    /// The TID as its 64-bit integer (top bit always 0).
    pub fn to_u64(&self) -> u64 {
        self.0.bytes().fold(0, |acc, b| {
            acc << 5 | u64::from(decode_char(b).unwrap_or(0))
        })
    }

    fn from_u64(value: u64) -> Tid {
        let mut out = String::with_capacity(LEN);
        for i in (0..LEN).rev() {
            out.push(ALPHABET[((value >> (5 * i)) & 31) as usize] as char);
        }
        Tid(out)
    }
}

/// The 5-bit value of one base32-sortable character.
fn decode_char(b: u8) -> Option<u8> {
    match b {
        b'2'..=b'7' => Some(b - b'2'),
        b'a'..=b'z' => Some(b - b'a' + 6),
        _ => None,
    }
}

pub(crate) fn validate(s: &str) -> Result<(), SyntaxError> {
    let err = SyntaxError::Tid;
    let bytes = s.as_bytes();
    if bytes.len() != LEN {
        return Err(err("must be exactly 13 characters"));
    }
    let mut first = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let v = decode_char(b).ok_or(err("has a character outside 234567a-z"))?;
        if i == 0 {
            first = v;
        }
    }
    // 13 characters carry 65 bits; the first character's top two bits are
    // bit 64 (must not exist) and bit 63 (the TID's always-zero top bit).
    if first >= 8 {
        return Err(err("top bit is set (first character must be 2-7, a or b)"));
    }
    Ok(())
}

/// Issues TIDs that only go forward.
///
/// Thread-safe and lock-free: the state is one atomic holding the last
/// timestamp handed out. Each TID gets a timestamp strictly greater than the
/// previous one from this clock, taking the system time when that is larger.
/// So TIDs are unique even when many threads ask in the same microsecond, and
/// keep increasing if the system clock steps back (they then run slightly
/// ahead of real time until it catches up).
///
/// Uniqueness holds per clock; different processes are told apart by their
/// random 10-bit clock ids, which is as unique as atproto promises TIDs to be.
#[derive(Debug)]
pub struct TidClock {
    clock_id: u16,
    /// The timestamp (µs) of the last TID issued; 0 before the first.
    last_micros: AtomicU64,
}

static GLOBAL: LazyLock<TidClock> = LazyLock::new(TidClock::new);

impl TidClock {
    /// A clock with a random clock id.
    pub fn new() -> TidClock {
        // RandomState is seeded from the OS's randomness once per process;
        // mixing in the current time also separates clocks made by the same
        // thread. Good enough for 10 bits, and needs no extra dependency.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        TidClock::with_clock_id(hasher.finish() as u16)
    }

    /// A clock with a fixed clock id (only its low 10 bits are used).
    pub fn with_clock_id(clock_id: u16) -> TidClock {
        TidClock {
            clock_id: clock_id & MAX_CLOCK_ID,
            last_micros: AtomicU64::new(0),
        }
    }

    /// The process-wide clock behind [`Tid::now`]. Use it (rather than a
    /// clock of your own) for everything in one process, so all TIDs the
    /// process issues are unique and increasing together.
    pub fn global() -> &'static TidClock {
        &GLOBAL
    }

    /// This clock's 10-bit id.
    pub fn clock_id(&self) -> u16 {
        self.clock_id
    }

    /// The next TID: greater than every TID this clock issued before.
    pub fn next(&self) -> Tid {
        self.issue(now_micros(), 0)
    }

    /// The next TID, also strictly greater than `prev`.
    ///
    /// For a repository's `rev`, which must increase with every commit even
    /// when the previous rev came from another process or a clock running
    /// ahead. If `prev` is ahead of the system time, the result is just past
    /// `prev`, and this clock stays ahead with it from then on (so a later
    /// TID can never repeat this one): a `prev` far in the future drags the
    /// clock into the future. Callers that take `prev` from outside (e.g. an
    /// imported repository) should bound it first.
    ///
    /// The one TID nothing can follow is a timestamp of
    /// [`MAX_TIMESTAMP_MICROS`] (the year 2255): for such a `prev` the result
    /// saturates at that timestamp and is not greater.
    pub fn next_after(&self, prev: Option<&Tid>) -> Tid {
        let floor = prev.map_or(0, |p| p.timestamp_micros().saturating_add(1));
        self.issue(now_micros(), floor)
    }

    /// Issues a TID with timestamp `max(now, floor, last + 1)`, recording it
    /// as the new `last`. Takes `now` as an argument so tests can move time.
    fn issue(&self, now: u64, floor: u64) -> Tid {
        let mut last = self.last_micros.load(Ordering::Relaxed);
        loop {
            let ts = now
                .max(floor)
                .max(last.saturating_add(1))
                .min(MAX_TIMESTAMP_MICROS);
            // Relaxed is enough: all threads see one modification order for
            // this single atomic, and a successful exchange means no other
            // thread took `ts` (nothing else needs to be synchronised).
            match self.last_micros.compare_exchange_weak(
                last,
                ts,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Tid::from_parts(ts, self.clock_id),
                Err(actual) => last = actual,
            }
        }
    }
}

impl Default for TidClock {
    fn default() -> Self {
        TidClock::new()
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn from_parts_round_trip() {
        for (micros, clock_id) in [
            (0, 0),
            (1, 1),
            (1_700_000_000_123_456, 517),
            (MAX_TIMESTAMP_MICROS, MAX_CLOCK_ID),
        ] {
            let tid = Tid::from_parts(micros, clock_id);
            assert_eq!(tid.as_str().len(), 13);
            assert_eq!(Tid::new(tid.as_str()).unwrap(), tid);
            assert_eq!((tid.timestamp_micros(), tid.clock_id()), (micros, clock_id));
        }
        assert_eq!(Tid::from_parts(0, 0).as_str(), "2222222222222");
        assert_eq!(
            Tid::from_parts(MAX_TIMESTAMP_MICROS, MAX_CLOCK_ID).as_str(),
            "bzzzzzzzzzzzz"
        );
        let known = Tid::new("3jzfcijpj2z2a").unwrap();
        assert_eq!(
            Tid::from_parts(known.timestamp_micros(), known.clock_id()),
            known
        );
    }

    #[test]
    fn string_order_is_numeric_order() {
        let a = Tid::from_parts(1_000, 1023);
        let b = Tid::from_parts(1_001, 0);
        assert!(a < b && a.to_u64() < b.to_u64());
    }

    #[test]
    fn rejects_top_bit() {
        assert!(Tid::new("c222222222222").is_err());
        assert!(Tid::new("j222222222222").is_err());
    }

    #[test]
    fn monotonic_and_unique_across_threads() {
        const THREADS: usize = 8;
        const PER_THREAD: usize = 10_000;
        let clock = TidClock::with_clock_id(7);
        let per_thread: Vec<Vec<Tid>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|_| s.spawn(|| (0..PER_THREAD).map(|_| clock.next()).collect::<Vec<_>>()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut all = HashSet::new();
        for tids in &per_thread {
            assert!(
                tids.windows(2).all(|w| w[0] < w[1]),
                "not increasing within a thread"
            );
            all.extend(tids.iter().cloned());
        }
        assert_eq!(all.len(), THREADS * PER_THREAD, "duplicate TIDs");
    }

    #[test]
    fn survives_clock_stepping_back() {
        let clock = TidClock::with_clock_id(0);
        let a = clock.issue(5_000_000, 0);
        let b = clock.issue(1_000_000, 0); // system clock jumped back 4 s
        let c = clock.issue(1_000_001, 0);
        assert!(a < b && b < c);
    }

    #[test]
    fn next_after_is_strictly_greater() {
        let clock = TidClock::new();
        assert!(clock.next_after(None) > Tid::from_parts(0, 0));

        // Same microsecond as our clock, but a higher clock id.
        let mine = clock.next();
        let theirs = Tid::from_parts(mine.timestamp_micros(), MAX_CLOCK_ID);
        assert!(clock.next_after(Some(&theirs)) > theirs);

        // Far in the future (another process with a broken clock).
        let future = Tid::from_parts(now_micros() + 10 * 365 * 24 * 3_600_000_000, MAX_CLOCK_ID);
        let after = clock.next_after(Some(&future));
        assert!(after > future);
        // And the clock does not fall back behind it afterwards.
        assert!(clock.next() > after);
    }

    #[test]
    fn next_after_saturates_at_end_of_time() {
        let clock = TidClock::with_clock_id(3);
        let end = Tid::from_parts(MAX_TIMESTAMP_MICROS, MAX_CLOCK_ID);
        assert_eq!(
            clock.next_after(Some(&end)).timestamp_micros(),
            MAX_TIMESTAMP_MICROS
        );
    }

    #[test]
    fn global_clock() {
        let a = Tid::now();
        let b = Tid::now();
        assert!(a < b);
        assert_eq!(a.clock_id(), TidClock::global().clock_id());
    }
}
