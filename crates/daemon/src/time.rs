//! Timestamps as Incus writes them: RFC 3339 with nanoseconds, UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// `2026-11-29T02:57:16.170438002Z` for `t`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let c = warren_image::time::civil(d.as_secs() as i64);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
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
