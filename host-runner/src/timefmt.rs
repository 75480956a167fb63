//! Unix seconds to and from the text forms users read and write: RFC 3339 in
//! UTC for output, RFC 3339 or a bare `YYYY-MM-DD` date in the configuration.

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Unix seconds now, from the system clock (0 before 1970).
pub fn now_unix() -> i64 {
    now_unix_ms() / 1000
}

/// Unix milliseconds: the times of syncs and leases, where a second is coarse.
pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2024-05-01T12:00:00Z` for unix seconds.
pub fn rfc3339_utc(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Which second of a bare date a bound means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayBound {
    /// 00:00:00 UTC: for lower bounds.
    Start,
    /// 23:59:59 UTC: for inclusive upper bounds, so the whole day counts.
    End,
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_date(s: &str) -> Option<(i64, u32, u32)> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let y = i64::from(y);
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return None;
    }
    Some((y, m, d))
}

/// Parses `YYYY-MM-DD` (a whole day in UTC, see [`DayBound`]) or an RFC 3339
/// date-time with an offset (`2024-05-01T12:00:00Z`, `…+02:00`, fractions
/// ignored) into unix seconds.
pub fn parse_date_or_rfc3339(text: &str, bound: DayBound) -> Result<i64, String> {
    let text = text.trim();
    let bad = || {
        format!(
            "`{text}` is not a date: write `YYYY-MM-DD` or an RFC 3339 time with an offset such as `2024-05-01T12:00:00Z`"
        )
    };
    if text.len() == 10 {
        let (y, m, d) = parse_date(text).ok_or_else(bad)?;
        let start = days_from_civil(y, m, d) * 86_400;
        return Ok(match bound {
            DayBound::Start => start,
            DayBound::End => start + 86_399,
        });
    }
    if text.len() < 20 {
        return Err(bad());
    }
    let (y, m, d) = parse_date(&text[..10]).ok_or_else(bad)?;
    let sep = text.as_bytes()[10];
    if !matches!(sep, b'T' | b't' | b' ') {
        return Err(bad());
    }
    let time = &text[11..];
    let tb = time.as_bytes();
    if tb.len() < 9 || tb[2] != b':' || tb[5] != b':' {
        return Err(bad());
    }
    let (hh, mm, ss) = (
        digits(&time[0..2]).ok_or_else(bad)?,
        digits(&time[3..5]).ok_or_else(bad)?,
        digits(&time[6..8]).ok_or_else(bad)?,
    );
    if hh > 23 || mm > 59 || ss > 60 {
        return Err(bad());
    }
    let mut rest = &time[8..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad());
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let ob = rest.as_bytes();
            if ob.len() != 6 || !matches!(ob[0], b'+' | b'-') || ob[3] != b':' {
                return Err(bad());
            }
            let oh = i64::from(digits(&rest[1..3]).ok_or_else(bad)?);
            let om = i64::from(digits(&rest[4..6]).ok_or_else(bad)?);
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            let sign = if ob[0] == b'-' { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
    };
    let local = days_from_civil(y, m, d) * 86_400
        + i64::from(hh) * 3600
        + i64::from(mm) * 60
        + i64::from(ss.min(59));
    Ok(local - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(1_714_564_800), "2024-05-01T12:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn parses_dates_and_times() {
        assert_eq!(
            parse_date_or_rfc3339("2024-05-01", DayBound::Start),
            Ok(1_714_521_600)
        );
        assert_eq!(
            parse_date_or_rfc3339("2024-05-01", DayBound::End),
            Ok(1_714_521_600 + 86_399)
        );
        assert_eq!(
            parse_date_or_rfc3339("2024-05-01T12:00:00Z", DayBound::Start),
            Ok(1_714_564_800)
        );
        assert_eq!(
            parse_date_or_rfc3339("2024-05-01T14:00:00.250+02:00", DayBound::End),
            Ok(1_714_564_800)
        );
        assert_eq!(
            parse_date_or_rfc3339("2024-05-01T07:00:00-05:00", DayBound::Start),
            Ok(1_714_564_800)
        );
    }

    #[test]
    fn rejects_malformed_text() {
        for bad in [
            "",
            "2024-5-1",
            "2024-02-30",
            "2023-02-29",
            "2024-13-01",
            "2024-05-01T12:00:00",
            "2024-05-01T25:00:00Z",
            "2024-05-01X12:00:00Z",
            "yesterday",
            "2024-05-01T12:00:00+0200",
        ] {
            let err = parse_date_or_rfc3339(bad, DayBound::Start).unwrap_err();
            assert!(err.contains("YYYY-MM-DD"), "{bad}: {err}");
        }
    }

    #[test]
    fn round_trips_through_the_civil_calendar() {
        for days in [-800_000, -1, 0, 59, 60, 365, 10_957, 19_844, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
