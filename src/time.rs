//! Time, in one place: the clock, the creation time (`SOURCE_DATE_EPOCH`), expiry arguments, and
//! RFC 3339 for printing. Every frontend calls these, so that `--expires 90d` and
//! `expires=timedelta(days=90)` mean the same instant.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result, UsageError};
use crate::limits::MAX_TIME;

/// The current time as Unix seconds. A clock before 1970 is an error, never 0: expiry checks
/// against a zero clock would silently pass every archive.
pub fn now() -> Result<u64> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| {
            UsageError::InvalidTime {
                value: "the system clock".into(),
                detail: "it reads a time before 1970; set the clock".into(),
            }
            .into()
        })
}

/// The creation time of a new archive: `SOURCE_DATE_EPOCH` when set, for reproducible archives
/// (<https://reproducible-builds.org/specs/source-date-epoch/>), else the clock.
pub fn creation_time() -> Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v.trim().parse().map_err(|_| {
            UsageError::InvalidTime {
                value: v.clone(),
                detail: "SOURCE_DATE_EPOCH must be Unix seconds".into(),
            }
            .into()
        }),
        Err(_) => now(),
    }
}

/// When an archive stops verifying, as a frontend was given it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// An absolute time, Unix seconds.
    At(u64),
    /// A span after the archive's creation time (so that with `SOURCE_DATE_EPOCH` the same inputs
    /// give the same expiry).
    After(Duration),
}

impl Expiry {
    /// Parses `--expires`: an RFC 3339 time (`2027-01-01T00:00:00Z`) or a duration (`90d`, `12h`).
    pub fn parse(value: &str) -> Result<Expiry> {
        if let Ok(t) = humantime::parse_rfc3339_weak(value) {
            return t
                .duration_since(UNIX_EPOCH)
                .map(|d| Expiry::At(d.as_secs()))
                .map_err(|_| invalid(value, "before 1970".into()));
        }
        humantime::parse_duration(value)
            .map(Expiry::After)
            .map_err(|e| invalid(value, format!("neither RFC 3339 nor a duration: {e}")))
    }

    /// The expiry in Unix seconds for an archive created at `created`.
    pub fn resolve(self, created: u64) -> Result<u64> {
        match self {
            Expiry::At(t) => Ok(t),
            Expiry::After(d) => created.checked_add(d.as_secs()).ok_or_else(|| {
                invalid(&format!("{}s", d.as_secs()), "too far in the future".into())
            }),
        }
    }
}

fn invalid(value: &str, detail: String) -> Error {
    UsageError::InvalidTime {
        value: value.into(),
        detail,
    }
    .into()
}

/// Parses an RFC 3339 time in UTC (`2026-12-02T00:00:00Z`, fractional seconds dropped) as Unix
/// seconds: the times of a trust policy. Other offsets are refused (write the time in UTC).
pub fn parse_rfc3339(value: &str) -> std::result::Result<u64, String> {
    let t = humantime::parse_rfc3339(value)
        .map_err(|e| format!("not an RFC 3339 time in UTC (…Z): {e}"))?;
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_err(|_| "before 1970".to_string())?
        .as_secs();
    if secs > MAX_TIME {
        return Err("after 9999-12-31T23:59:59Z".into());
    }
    Ok(secs)
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-12-02T00:00:00Z`). Never panics: a time after
/// year 9999 (which no archive carries: they are refused at seal and at parse) prints as `@SECS`.
pub fn rfc3339(secs: u64) -> String {
    if secs > MAX_TIME {
        return format!("@{secs}");
    }
    match UNIX_EPOCH.checked_add(Duration::from_secs(secs)) {
        Some(t) => humantime::format_rfc3339_seconds(t).to_string(),
        None => format!("@{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_counts_from_the_creation_time_and_an_instant_is_kept() {
        let day = 86_400;
        assert_eq!(
            Expiry::parse("90d").unwrap().resolve(1_000).unwrap(),
            1_000 + 90 * day
        );
        assert_eq!(
            Expiry::parse("2027-01-01T00:00:00Z").unwrap(),
            Expiry::At(1_798_761_600)
        );
        assert!(Expiry::parse("soon").is_err());
        assert!(Expiry::parse("1960-01-01T00:00:00Z").is_err());
        assert!(Expiry::After(Duration::from_secs(u64::MAX))
            .resolve(1)
            .is_err());
    }

    #[test]
    fn printing_never_panics() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(MAX_TIME), "9999-12-31T23:59:59Z");
        assert_eq!(rfc3339(u64::MAX), format!("@{}", u64::MAX));
    }
}
