//! [`KeyError`]: why a key or a key ring could not be made.

use std::fmt;

/// The smallest secret a [`Key`](crate::Key) accepts, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// The shell command that makes a production key, named in the errors.
pub(crate) const MAKE_KEY: &str = "head -c 32 /dev/urandom | base64";

/// Why a key could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// The secret is shorter than [`MIN_KEY_LEN`] bytes.
    TooShort {
        /// How many bytes were given.
        len: usize,
    },
    /// The text is not base64 (standard or URL-safe, padded or not).
    NotBase64,
    /// The environment variable is not set (or not valid Unicode).
    MissingVar {
        /// The variable's name.
        name: String,
    },
    /// A key ring description is not of the form `id:base64[,id:base64…]`.
    /// The reason never quotes the text given (it may be a secret).
    BadRing {
        /// What is wrong.
        reason: String,
    },
    /// A key ring names the same id twice: which key signs would be a guess.
    DuplicateId {
        /// The id given twice.
        id: u32,
    },
    /// The operating system's random number generator failed.
    Random,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::TooShort { len } => write!(
                f,
                "a key needs at least {MIN_KEY_LEN} bytes of secret, got {len}; make one with `{MAKE_KEY}`"
            ),
            KeyError::NotBase64 => {
                write!(f, "the key is not valid base64; make one with `{MAKE_KEY}`")
            }
            KeyError::MissingVar { name } => write!(
                f,
                "the environment variable {name} is not set: set {name}=1:<key> for \
                 KeyRing::from_env (the key alone for Key::from_env), where <key> is \
                 the output of `{MAKE_KEY}`, the same in every process; while \
                 developing, KeyRing::development() makes a random key instead"
            ),
            KeyError::BadRing { reason } => write!(
                f,
                "bad key ring: {reason} (the format is id:key[,id:key…], e.g. \
                 1:<key> with <key> the output of `{MAKE_KEY}`)"
            ),
            KeyError::DuplicateId { id } => write!(
                f,
                "bad key ring: key id {id} is given twice (each key needs an id of its own)"
            ),
            KeyError::Random => f.write_str("the system random number generator failed"),
        }
    }
}

impl std::error::Error for KeyError {}
