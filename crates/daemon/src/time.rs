//! Timestamps as Incus writes them: RFC 3339 with nanoseconds, UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-29T02:57:16.170438002Z` for `t`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // days since the epoch to a civil date (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

pub fn now() -> String {
    rfc3339(SystemTime::now())
}

/// Unix seconds as RFC 3339 without fractions (image creation dates).
pub fn from_unix(secs: i64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_secs(secs.max(0) as u64);
    let s = rfc3339(t);
    format!("{}Z", &s[..19])
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats() {
        assert_eq!(super::from_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::from_unix(1_795_921_177), "2026-11-29T02:59:37Z");
    }
}
