//! Datetimes in the `datetime` Lexicon format: the common subset of RFC 3339
//! and ISO 8601, `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`.
//!
//! [`Datetime::new`] is a full parse, not just a shape check: it also rejects
//! strings that have the right shape but name no real instant (month 13,
//! 30 February, hour 25, second 60) or that fall outside years 0000–9999
//! once converted to UTC (`0000-01-01T00:00:00+01:00` is in year -1). These
//! are the interop suite's `datetime_parse_invalid` cases, which the
//! reference implementations also reject when validating records.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::SyntaxError;
use crate::string_type::string_type;

/// Longest datetime accepted (the reference implementations' limit; leaves
/// room for 43 fractional digits).
const MAX_LEN: usize = 64;

/// A valid atproto datetime, e.g. `1985-04-12T23:20:50.123Z`.
///
/// Kept exactly as written (records are signed, so their strings must round
/// trip). Ordering and equality are on the string, which matches
/// chronological order only between datetimes written with the same offset
/// and precision.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Datetime(String);

string_type!(Datetime, validate);

impl std::borrow::Borrow<str> for Datetime {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Datetime {
    /// The current time in the preferred form: UTC, millisecond precision,
    /// e.g. `2024-05-01T12:34:56.789Z`.
    pub fn now() -> Datetime {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since_epoch.as_secs();
        let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
        let (year, month, day) = civil_from_days(days as i64);
        Datetime(format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs_of_day / 3600,
            secs_of_day / 60 % 60,
            secs_of_day % 60,
            since_epoch.subsec_millis(),
        ))
    }
}

pub(crate) fn validate(s: &str) -> Result<(), SyntaxError> {
    let err = SyntaxError::Datetime;
    let b = s.as_bytes();
    if b.len() > MAX_LEN {
        return Err(err("longer than 64 characters"));
    }
    // Fixed-width head: YYYY-MM-DDTHH:MM:SS (19 bytes).
    if b.len() < 20 {
        return Err(err("too short for YYYY-MM-DDTHH:MM:SS plus a timezone"));
    }
    let shape_ok = b[4] == b'-' && b[7] == b'-' && b[10] == b'T' && b[13] == b':' && b[16] == b':';
    let (year, month, day) = (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10]));
    let (hour, minute, second) = (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19]));
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second), true) =
        (year, month, day, hour, minute, second, shape_ok)
    else {
        return Err(err("must look like YYYY-MM-DDTHH:MM:SS"));
    };

    // Optional fraction: '.' and at least one digit.
    let mut rest = &b[19..];
    if let Some(after_dot) = rest.strip_prefix(b".") {
        let n = after_dot.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return Err(err("fractional seconds need at least one digit"));
        }
        rest = &after_dot[n..];
    }

    // Timezone: 'Z' or ±HH:MM; "-00:00" means "offset unknown" in RFC 3339
    // and is not valid ISO 8601, so it is refused.
    let offset_minutes: i64 = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (Some(oh), Some(om)) = (digits(&[*h1, *h2]), digits(&[*m1, *m2])) else {
                return Err(err("timezone offset must be ±HH:MM"));
            };
            if oh > 23 || om > 59 {
                return Err(err("timezone offset out of range"));
            }
            if *sign == b'-' && oh == 0 && om == 0 {
                return Err(err("\"-00:00\" is not allowed; use \"Z\" or \"+00:00\""));
            }
            let minutes = i64::from(oh * 60 + om);
            if *sign == b'-' { -minutes } else { minutes }
        }
        _ => return Err(err("timezone must be \"Z\" or ±HH:MM")),
    };

    // Calendar checks. Second 60 (a leap second) is refused, as the
    // reference implementations' date libraries refuse it.
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(err("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(err("no such time of day"));
    }

    // The instant, in minutes since 0000-01-01T00:00Z, must stay within
    // years 0000-9999 after applying the offset.
    let local_minutes =
        days_from_year_zero(year, month, day) * 1440 + i64::from(hour * 60 + minute);
    let utc_minutes = local_minutes - offset_minutes;
    if !(0..days_from_year_zero(10_000, 1, 1) * 1440).contains(&utc_minutes) {
        return Err(err("outside years 0000-9999 once converted to UTC"));
    }
    Ok(())
}

/// Parses a run of ASCII digits; `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 0000-01-01 to the given date (proleptic Gregorian calendar).
fn days_from_year_zero(year: u32, month: u32, day: u32) -> i64 {
    let before_this_year = if year == 0 {
        0
    } else {
        let y = i64::from(year) - 1;
        // Year 0 is a leap year (366 days), plus the leap days of 1..=y.
        366 + y * 365 + y / 4 - y / 100 + y / 400
    };
    let before_this_month: u32 = (1..month).map(|m| days_in_month(year, m)).sum();
    before_this_year + i64::from(before_this_month) + i64::from(day) - 1
}

/// Converts days since 1970-01-01 to (year, month, day); the inverse of the
/// usual "days from civil" algorithm, on 400-year eras.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // shift the epoch to 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // 0 = March
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert!(Datetime::new("2024-02-29T00:00:00Z").is_ok());
        assert!(Datetime::new("2023-02-29T00:00:00Z").is_err());
        assert!(Datetime::new("1900-02-29T00:00:00Z").is_err());
        assert!(Datetime::new("2000-02-29T00:00:00Z").is_ok());
        assert!(Datetime::new("1985-04-31T00:00:00Z").is_err());
        assert!(Datetime::new("1985-04-12T23:59:60Z").is_err());
        assert!(Datetime::new("9999-12-31T23:59:59Z").is_ok());
        assert!(Datetime::new("9999-12-31T23:59:59-01:00").is_err());
        assert!(Datetime::new("0000-01-01T00:30:00+00:30").is_ok());
        assert!(Datetime::new("1985-04-12T23:20:50.123+24:00").is_err());
    }

    #[test]
    fn epoch_arithmetic_agrees() {
        // 1970-01-01 is day 719528 after 0000-01-01.
        assert_eq!(days_from_year_zero(1970, 1, 1), 719_528);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        for days in [-719_528, -1, 0, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_year_zero(y as u32, m, d) - 719_528, days);
        }
    }

    #[test]
    fn now_is_valid() {
        let now = Datetime::now();
        assert_eq!(now.as_str().len(), 24);
        assert!(Datetime::new(now.as_str()).is_ok(), "{now}");
    }
}
