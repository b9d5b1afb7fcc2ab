//! Millisecond timestamps, as the directory records them (`createdAt`).

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::PlcError;

const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, UTC.
///
/// Shown and parsed as `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form of the
/// directory's `createdAt` (JavaScript's `Date.toISOString`). Parsing also
/// takes any number of fraction digits (cut to milliseconds) and `+HH:MM` /
/// `-HH:MM` offsets, so logs from other directories can be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The current time from the system clock.
    pub fn now() -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        Timestamp(ms)
    }

    /// A timestamp from milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// This timestamp moved by `ms` milliseconds (saturating).
    pub const fn plus_millis(self, ms: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(ms))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }
}

impl FromStr for Timestamp {
    type Err = PlcError;

    fn from_str(s: &str) -> Result<Timestamp, PlcError> {
        parse(s.as_bytes())
            .ok_or_else(|| PlcError::InvalidLog(format!("not a UTC timestamp: {s:?}")))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn parse(b: &[u8]) -> Option<Timestamp> {
    if b.len() < 20 || b.len() > 64 {
        return None;
    }
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for i in 0..3 {
            millis = millis * 10
                + fraction
                    .get(i)
                    .filter(|_| i < n)
                    .map_or(0, |c| i64::from(c - b'0'));
        }
        rest = &fraction[n..];
    }
    let offset_minutes = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = digits(&[*h1, *h2])?;
            let minutes = digits(&[*m1, *m2])?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let ms =
        days * MS_PER_DAY + ((hour * 60 + minute - offset_minutes) * 60 + second) * 1000 + millis;
    Some(Timestamp(ms))
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. Counts in 400-year
/// eras (146097 days each) with years starting in March, so the leap day is
/// the last day of its year.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millis()
    }

    #[test]
    fn known_instants() {
        assert_eq!(ts("1970-01-01T00:00:00.000Z"), 0);
        assert_eq!(ts("1970-01-04T00:00:02.000Z"), 3 * MS_PER_DAY + 2000);
        // `date -u -d 2023-04-12T04:53:57.057Z +%s%3N`
        assert_eq!(ts("2023-04-12T04:53:57.057Z"), 1_681_275_237_057);
        assert_eq!(ts("2000-02-29T23:59:59.999Z"), 951_868_799_999);
        assert_eq!(ts("1969-12-31T23:59:59.999Z"), -1);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "1970-01-01T00:00:00.000Z",
            "2023-04-12T04:53:57.057Z",
            "2000-02-29T23:59:59.999Z",
            "2024-12-31T12:00:00.500Z",
            "1969-12-31T23:59:59.999Z",
            "9999-12-31T23:59:59.999Z",
        ] {
            assert_eq!(s.parse::<Timestamp>().unwrap().to_string(), s);
        }
        // Every day of a few years, to cover month and leap boundaries.
        for day in -800..2000 {
            let t = Timestamp::from_millis(day * MS_PER_DAY + 12_345);
            assert_eq!(t.to_string().parse::<Timestamp>().unwrap(), t);
        }
    }

    #[test]
    fn other_forms() {
        assert_eq!(ts("1970-01-01T00:00:00Z"), 0);
        assert_eq!(ts("1970-01-01T00:00:00.1Z"), 100);
        assert_eq!(ts("1970-01-01T00:00:00.123456Z"), 123);
        assert_eq!(ts("1970-01-01T01:00:00.000+01:00"), 0);
        assert_eq!(ts("1969-12-31T23:00:00-01:00"), 0);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "1970-01-01",
            "1970-01-01T00:00:00.000",
            "1970-13-01T00:00:00.000Z",
            "1970-02-30T00:00:00.000Z",
            "2023-02-29T00:00:00.000Z",
            "1970-01-01T24:00:00.000Z",
            "1970-01-01T00:00:00.Z",
            "1970-01-01 00:00:00.000Z",
            "1970-01-01T00:00:00.000z",
            "1970-01-01T00:00:00.000+0100",
        ] {
            assert!(s.parse::<Timestamp>().is_err(), "{s}");
        }
    }

    #[test]
    fn now_is_recent() {
        // After 2024-01-01.
        assert!(Timestamp::now().as_millis() > 1_704_067_200_000);
    }
}
