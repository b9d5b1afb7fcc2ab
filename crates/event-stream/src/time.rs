//! Event timestamps: the `time` field of every event, in the lexicon `datetime` format the
//! reference writes (`2024-05-01T12:34:56.789Z`: UTC, millisecond precision), and the same
//! instant as milliseconds for the log's trimming.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The first instant of year 10000, which the `datetime` format cannot write.
const END_OF_YEAR_9999_SECS: u64 = 253_402_300_800;

/// Milliseconds since the Unix epoch; instants before it count as the epoch.
pub(crate) fn millis(t: SystemTime) -> i64 {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// `t` as a lexicon datetime, clamped to what the format can hold (years 1970 to 9999).
pub(crate) fn format_datetime(t: SystemTime) -> String {
    let since = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .min(Duration::from_secs(END_OF_YEAR_9999_SECS) - Duration::from_millis(1));
    let secs = since.as_secs();
    let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        since.subsec_millis(),
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn formats_like_the_reference() {
        assert_eq!(format_datetime(at(0, 0)), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day in a century leap year), 23:59:59.999.
        assert_eq!(
            format_datetime(at(951_868_799, 999)),
            "2000-02-29T23:59:59.999Z"
        );
        assert_eq!(
            format_datetime(at(1_714_566_896, 789)),
            "2024-05-01T12:34:56.789Z"
        );
        assert_eq!(
            format_datetime(UNIX_EPOCH - Duration::from_secs(5)),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            format_datetime(at(END_OF_YEAR_9999_SECS * 2, 0)),
            "9999-12-31T23:59:59.999Z"
        );
        for s in [
            format_datetime(at(1_714_566_896, 7)),
            format_datetime(SystemTime::now()),
        ] {
            pds_syntax::Datetime::new(&s).unwrap();
        }
        assert_eq!(millis(at(12, 345)), 12_345);
    }
}
