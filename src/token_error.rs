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
                "the form was opened {} minutes ago, longer than the {} minutes a form stays valid; reload it to see the current data",
                age.as_secs() / 60,
                max_age.as_secs() / 60
            ),
            TokenError::IssuedInFuture { ahead } => write!(
                f,
                "the concurrency token claims to be issued {} seconds in the future; reload the page and submit the form again",
                ahead.as_secs()
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
