//! Why a token was refused: [`TokenError`], for the wire format and the token service alike.

use std::fmt;
use std::time::Duration;

/// Why a token was refused. Every message tells the user what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token: wrong length, not base64url, padded, truncated or extended.
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A token version this release does not read.
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// Signed with a key that is not (or no longer) in the ring.
    UnknownKey {
        /// The key id it names.
        key_id: u32,
    },
    /// The signature does not match: the token was altered.
    BadSignature,
    /// Older than the configured maximum age.
    Expired {
        /// How old it is.
        age: Duration,
        /// The maximum age.
        max_age: Duration,
    },
    /// Issued later than now, beyond the allowed clock skew.
    IssuedInFuture {
        /// How far in the future.
        ahead: Duration,
    },
    /// Issued for another form.
    WrongForm,
    /// Issued for another record.
    WrongResource,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed { reason } => write!(
                f,
                "the concurrency token is malformed ({reason}); reload the page and submit the form again"
            ),
            TokenError::UnsupportedVersion { version } => write!(
                f,
                "the concurrency token has format version {version}, which this server does not read: the form was opened before an upgrade of the server (or on another release); reload the page to get a fresh form, then make your changes again"
            ),
            TokenError::UnknownKey { key_id } => write!(
                f,
                "the concurrency token was signed with key {key_id}, which this server no longer accepts; reload the page to get a fresh form"
            ),
            TokenError::BadSignature => f.write_str(
                "the concurrency token's signature does not match: it was altered; reload the page and submit the form again",
            ),
            TokenError::Expired { age, max_age } => write!(
                f,
                "the form was opened {} ago, longer than the {} a form stays valid; reload it to see the current data",
                span(*age),
                span(*max_age)
            ),
            TokenError::IssuedInFuture { ahead } => write!(
                f,
                "the concurrency token claims to be issued {} in the future; reload the page and submit the form again",
                span(*ahead)
            ),
            TokenError::WrongForm => f.write_str(
                "the concurrency token belongs to another form; reload the page and submit the form again",
            ),
            TokenError::WrongResource => f.write_str(
                "the concurrency token belongs to another record; reload the page and submit the form again",
            ),
        }
    }
}

impl std::error::Error for TokenError {}

/// A span of time as words, in whole units, the unit after its size: "1
/// second", "45 seconds", "3 minutes" (from 2 minutes), "5 hours" (from 2
/// hours), "3 days" (from 2 days).
pub(crate) fn span(span: std::time::Duration) -> String {
    let secs = span.as_secs();
    let (n, unit) = match secs {
        0..120 => (secs, "second"),
        120..7200 => (secs / 60, "minute"),
        7200..172_800 => (secs / 3600, "hour"),
        _ => (secs / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::TokenError;

    #[test]
    fn an_expiry_says_its_spans_in_the_unit_they_need() {
        let expired = |age, max_age| {
            TokenError::Expired {
                age: Duration::from_secs(age),
                max_age: Duration::from_secs(max_age),
            }
            .to_string()
        };
        assert!(
            expired(45, 30).starts_with(
                "the form was opened 45 seconds ago, longer than the 30 seconds a form stays valid"
            ),
            "{}",
            expired(45, 30)
        );
        assert!(expired(61, 1).contains("61 seconds ago, longer than the 1 second"));
        assert!(expired(600, 300).contains("10 minutes ago, longer than the 5 minutes"));
        assert!(expired(3 * 86_400, 86_400).contains("3 days ago, longer than the 24 hours"));
    }
}
