//! Secret keys and the key ring that signs and verifies tokens.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// The smallest secret a [`Key`] accepts, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// The shell command that makes a production key, named in the errors.
const MAKE_KEY: &str = "head -c 32 /dev/urandom | base64";

/// Size of the xxh3 secret derived for fingerprints.
pub(crate) const FINGERPRINT_SECRET_LEN: usize = 192;

/// A secret key: at least [`MIN_KEY_LEN`] bytes.
///
/// It is never used directly: two subkeys are derived from it with
/// HMAC-SHA256, one per purpose:
///
/// - the *signing* subkey keys the HMAC-SHA256 tag of every token;
/// - the *fingerprint* subkey (192 bytes) is the xxh3 secret that keys the
///   fingerprint, the resource and context digests;
/// - the *input* subkey keys HMAC-SHA256, the pseudo-random function of the
///   per-input digests (bound to the form and the record), so a token
///   reveals nothing about the values it covers, not even which records
///   share a value.
///
/// `Debug` never prints the key material.
#[derive(Clone)]
pub struct Key {
    inner: Arc<KeyMaterial>,
}

/// What is derived from a secret once, when the key is made.
pub(crate) struct KeyMaterial {
    /// HMAC-SHA256 keyed with the signing subkey, ready to clone per token.
    pub(crate) signer: HmacSha256,
    /// The xxh3 secret for fingerprints and digests.
    pub(crate) fingerprint_secret: [u8; FINGERPRINT_SECRET_LEN],
    /// HMAC-SHA256 keyed with the input subkey: the pseudo-random function
    /// of the per-input digests.
    pub(crate) input_digests: HmacSha256,
}

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
    BadRing {
        /// What is wrong.
        reason: String,
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
            KeyError::Random => f.write_str("the system random number generator failed"),
        }
    }
}

impl std::error::Error for KeyError {}

impl Key {
    /// A key from raw secret bytes (at least [`MIN_KEY_LEN`]).
    pub fn from_bytes(secret: &[u8]) -> Result<Key, KeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort { len: secret.len() });
        }
        Ok(Key {
            inner: Arc::new(KeyMaterial::derive(secret)),
        })
    }

    /// A key from base64 text (standard or URL-safe alphabet, padding
    /// optional), e.g. the output of `openssl rand -base64 32`.
    pub fn from_base64(text: &str) -> Result<Key, KeyError> {
        let bytes = decode_base64_any(text.trim()).ok_or(KeyError::NotBase64)?;
        Key::from_bytes(&bytes)
    }

    /// A key from the base64 text in environment variable `name`.
    pub fn from_env(name: &str) -> Result<Key, KeyError> {
        let text = std::env::var(name).map_err(|_| KeyError::MissingVar {
            name: name.to_owned(),
        })?;
        Key::from_base64(&text)
    }

    /// A fresh random 32-byte key from the operating system.
    ///
    /// Tokens signed with it do not survive a restart and are not accepted by
    /// other processes: use it for tests and single-process development, and
    /// load a shared key ([`Key::from_env`]) in production.
    ///
    /// # Panics
    ///
    /// If the operating system has no random number generator; see
    /// [`Key::try_generate`] for the fallible form.
    pub fn generate() -> Key {
        Key::try_generate().expect("the operating system's random number generator failed")
    }

    /// A fresh random 32-byte key, or an error if the OS cannot provide one.
    pub fn try_generate() -> Result<Key, KeyError> {
        let mut secret = [0u8; MIN_KEY_LEN];
        getrandom::fill(&mut secret).map_err(|_| KeyError::Random)?;
        Key::from_bytes(&secret)
    }

    pub(crate) fn material(&self) -> &KeyMaterial {
        &self.inner
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(hidden)")
    }
}

impl KeyMaterial {
    fn derive(secret: &[u8]) -> KeyMaterial {
        let subkey = |label: &[u8]| -> [u8; 32] {
            let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
            mac.update(b"concurrency-guard v1 ");
            mac.update(label);
            mac.finalize().into_bytes().into()
        };
        let signing = subkey(b"signing");
        let signer = HmacSha256::new_from_slice(&signing).expect("HMAC takes any key length");
        let mut fingerprint_secret = [0u8; FINGERPRINT_SECRET_LEN];
        for (i, chunk) in fingerprint_secret.chunks_mut(32).enumerate() {
            let block = subkey(&[b"fingerprint ".as_slice(), &[b'0' + i as u8]].concat());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        let input_digests = HmacSha256::new_from_slice(&subkey(b"input digests"))
            .expect("HMAC takes any key length");
        KeyMaterial {
            signer,
            fingerprint_secret,
            input_digests,
        }
    }
}

/// The start of `entry`, enough to recognize it, never a whole key.
fn abbreviate(entry: &str) -> String {
    let start: String = entry.chars().take(4).collect();
    if start.len() < entry.len() {
        format!("{start}…")
    } else {
        start
    }
}

fn decode_base64_any(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

/// Keys by id: the newest signs, all of them verify.
///
/// The newest key (the one given to [`KeyRing::new`] or the last
/// [`KeyRing::rotate`]) signs new tokens; every key in the ring verifies
/// tokens that name its id. Every process that serves the same forms must
/// share the ring.
///
/// ```
/// use concurrency_guard::{Key, KeyRing};
///
/// let old = Key::from_base64("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldC0xMjM0").unwrap();
/// let new = Key::generate();
/// // Tokens signed with key 1 keep verifying; new tokens are signed with key 2.
/// let ring = KeyRing::new(1, old).rotate(2, new);
/// assert_eq!(ring.signing_key_id(), 2);
/// assert_eq!(format!("{ring:?}"), "KeyRing { signing: 2, ids: [1, 2] }");
/// ```
///
/// Cheap to clone (the keys are shared). `Debug` prints only the ids.
#[derive(Clone)]
pub struct KeyRing {
    /// Sorted by id; small, so a linear scan is the fastest lookup.
    keys: Arc<[(u32, Key)]>,
    signing: u32,
}

impl KeyRing {
    /// A ring with one key, which signs.
    pub fn new(id: u32, key: Key) -> KeyRing {
        KeyRing {
            keys: Arc::from(vec![(id, key)]),
            signing: id,
        }
    }

    /// Adds `key` under `id` and makes it the signing key; the keys already
    /// in the ring keep verifying their tokens. A key already under `id` is
    /// replaced.
    pub fn rotate(self, id: u32, key: Key) -> KeyRing {
        let mut ring = self.with_previous(id, key);
        ring.signing = id;
        ring
    }

    /// Adds `key` under `id` to verify tokens only (the signing key stays).
    /// A key already under `id` is replaced.
    pub fn with_previous(self, id: u32, key: Key) -> KeyRing {
        let mut keys: Vec<(u32, Key)> = self
            .keys
            .iter()
            .filter(|(k, _)| *k != id)
            .cloned()
            .collect();
        keys.push((id, key));
        keys.sort_by_key(|(k, _)| *k);
        KeyRing {
            keys: keys.into(),
            signing: self.signing,
        }
    }

    /// Removes the key under `id`: tokens signed with it are refused from now
    /// on. Removing the signing key is refused (returns the ring unchanged and
    /// `false`), since the ring must always be able to sign.
    pub fn remove(self, id: u32) -> (KeyRing, bool) {
        if id == self.signing || !self.keys.iter().any(|(k, _)| *k == id) {
            return (self, false);
        }
        let keys: Vec<(u32, Key)> = self
            .keys
            .iter()
            .filter(|(k, _)| *k != id)
            .cloned()
            .collect();
        (
            KeyRing {
                keys: keys.into(),
                signing: self.signing,
            },
            true,
        )
    }

    /// A ring with one random key (id 1), for development: one line, nothing
    /// to set up. It logs a warning when made: forms rendered before a
    /// restart are refused after it (their key is gone), and other processes
    /// refuse this one's tokens.
    ///
    /// In production, make a key once and give every process the same ring
    /// through [`KeyRing::from_env`]:
    ///
    /// ```sh
    /// export CONCURRENCY_GUARD_KEYS="1:$(head -c 32 /dev/urandom | base64)"
    /// ```
    ///
    /// # Panics
    ///
    /// If the operating system has no random number generator (as
    /// [`Key::generate`]).
    pub fn development() -> KeyRing {
        tracing::warn!(
            "KeyRing::development(): signing with a random key; forms rendered before a \
             restart will be refused after it, and other processes refuse this one's. \
             In production set CONCURRENCY_GUARD_KEYS=1:<key> (<key>: `{MAKE_KEY}`) \
             and use KeyRing::from_env"
        );
        KeyRing::from(Key::generate())
    }

    /// Parses a ring from text: `id:base64key[,id:base64key…]`, the first
    /// entry signing and the others verifying. This is the format of
    /// [`KeyRing::from_env`].
    pub fn parse(text: &str) -> Result<KeyRing, KeyError> {
        let mut ring: Option<KeyRing> = None;
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, key) = entry.split_once(':').ok_or_else(|| KeyError::BadRing {
                reason: format!(
                    "each entry must be id:base64key, got {:?}",
                    abbreviate(entry)
                ),
            })?;
            let id: u32 = id.trim().parse().map_err(|_| KeyError::BadRing {
                reason: format!("key id {id:?} is not a number from 0 to {}", u32::MAX),
            })?;
            let key = Key::from_base64(key)?;
            ring = Some(match ring {
                None => KeyRing::new(id, key),
                Some(ring) => ring.with_previous(id, key),
            });
        }
        ring.ok_or_else(|| KeyError::BadRing {
            reason: "no keys given".into(),
        })
    }

    /// Reads a ring from environment variable `name` in the format of
    /// [`KeyRing::parse`], e.g.
    /// `CONCURRENCY_GUARD_KEYS=2:bmV3…,1:b2xk…`.
    pub fn from_env(name: &str) -> Result<KeyRing, KeyError> {
        let text = std::env::var(name).map_err(|_| KeyError::MissingVar {
            name: name.to_owned(),
        })?;
        KeyRing::parse(&text)
    }

    /// The id of the key that signs new tokens.
    pub fn signing_key_id(&self) -> u32 {
        self.signing
    }

    /// The ids of every key in the ring, ascending.
    pub fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    pub(crate) fn signing_key(&self) -> &Key {
        self.get(self.signing)
            .expect("the signing key is always in the ring")
    }

    pub(crate) fn get(&self, id: u32) -> Option<&Key> {
        self.keys.iter().find(|(k, _)| *k == id).map(|(_, key)| key)
    }
}

impl From<Key> for KeyRing {
    /// A ring with `key` under id 1.
    fn from(key: Key) -> KeyRing {
        KeyRing::new(1, key)
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("signing", &self.signing)
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(
            Key::from_bytes(&[0; 31]).unwrap_err(),
            KeyError::TooShort { len: 31 }
        );
        assert!(Key::from_bytes(&[0; 32]).is_ok());
    }

    #[test]
    fn base64_in_any_alphabet() {
        let std = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        assert!(Key::from_base64(std).is_ok());
        assert!(Key::from_base64(std.trim_end_matches('=')).is_ok());
        assert_eq!(Key::from_base64("%%%").unwrap_err(), KeyError::NotBase64);
    }

    #[test]
    fn debug_hides_material() {
        let key = Key::from_bytes(b"super-secret-super-secret-super-secret").unwrap();
        assert_eq!(format!("{key:?}"), "Key(hidden)");
        let ring = KeyRing::new(7, key);
        assert!(!format!("{ring:?}").contains("secret"));
    }

    #[test]
    fn subkeys_differ_per_purpose_and_key() {
        let a = Key::from_bytes(&[1; 32]).unwrap();
        let b = Key::from_bytes(&[2; 32]).unwrap();
        assert_ne!(
            a.material().fingerprint_secret,
            b.material().fingerprint_secret
        );
        let sign = a.material().signer.clone().finalize().into_bytes();
        assert_ne!(&sign[..], &a.material().fingerprint_secret[..32]);
    }

    #[test]
    fn ring_rotation_and_removal() {
        let ring = KeyRing::new(1, Key::generate()).rotate(2, Key::generate());
        assert_eq!(ring.signing_key_id(), 2);
        assert!(ring.get(1).is_some());
        let (ring, removed) = ring.remove(1);
        assert!(removed);
        assert!(ring.get(1).is_none());
        let (ring, removed) = ring.remove(2);
        assert!(!removed, "the signing key cannot be removed");
        assert_eq!(ring.signing_key_id(), 2);
    }

    #[test]
    fn a_missing_variable_says_what_to_set() {
        let name = "CONCURRENCY_GUARD_TEST_KEYS_NEVER_SET";
        let err = KeyRing::from_env(name).unwrap_err();
        assert_eq!(err, KeyError::MissingVar { name: name.into() });
        let message = err.to_string();
        assert!(
            message.contains(&format!("set {name}=1:<key>")),
            "{message}"
        );
        assert!(
            message.contains("head -c 32 /dev/urandom | base64"),
            "{message}"
        );
        assert!(message.contains("KeyRing::development()"), "{message}");
        // A key without its id: the format, and not the key, in the message.
        let k = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let message = KeyRing::parse(k).unwrap_err().to_string();
        assert!(message.contains("id:key"), "{message}");
        assert!(!message.contains(k), "{message}");
        let message = KeyRing::parse("1:c2hvcnQ=").unwrap_err().to_string();
        assert!(message.contains("head -c 32"), "{message}");
    }

    #[test]
    fn the_development_ring_signs_and_warns() {
        #[derive(Clone, Default)]
        struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Captured {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let ring = tracing::subscriber::with_default(subscriber, KeyRing::development);
        assert_eq!(ring.signing_key_id(), 1);
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("WARN"), "{log}");
        assert!(log.contains("random key"), "{log}");
        assert!(log.contains("CONCURRENCY_GUARD_KEYS=1:<key>"), "{log}");
    }

    #[test]
    fn ring_from_text() {
        let k = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        let ring = KeyRing::parse(&format!("3:{k}, 2:{k}")).unwrap();
        assert_eq!(ring.signing_key_id(), 3);
        assert_eq!(ring.ids().collect::<Vec<_>>(), vec![2, 3]);
        assert!(KeyRing::parse("").is_err());
        assert!(KeyRing::parse("x:abc").is_err());
    }
}
