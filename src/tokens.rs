//! The token service: issuing tokens and checking submitted ones against the form as it is now.
//!
//! [`Tokens`] holds the key ring and the policy (field name, maximum age,
//! clock skew); it opens a token ([`Opened`]: signature, age and form
//! checked) and compares it with the current [`FormState`], producing a
//! [`Conflict`] when they differ. The bytes of a token are `crate::token`'s
//! business.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use crate::claims::Claims;
use crate::conflict::Conflict;
use crate::fingerprint::{StateDigests, check_digests};
use crate::key::{Key, KeyRing};
use crate::state::{FormState, RenderState};
use crate::token::{ConcurrencyToken, DEFAULT_FIELD_NAME, form_prefix, unix_seconds};
use crate::token_error::TokenError;

/// How an application issues and checks tokens: the key ring, the form
/// field's name and how long a token stays valid.
///
/// The guard holds one; use it directly to check a token yourself, e.g.
/// inside a database transaction after loading the record with a row lock.
///
/// ```
/// use concurrency_guard::{CheckError, FormState, Key, KeyRing, RenderState, Tokens};
///
/// #[derive(Clone)]
/// struct Note { id: i64, text: String }
/// impl RenderState for Note {
///     const FORM_NAME: &'static str = "note";
///     fn render_state(&self, s: &mut FormState) {
///         s.key("id", &self.id);
///         s.input("text", &self.text);
///     }
/// }
///
/// let tokens = Tokens::new(KeyRing::from(Key::generate()));
/// let shown = Note { id: 1, text: "draft".into() };
/// let token = tokens.issue(&shown);
/// assert!(tokens.check(token.value(), &shown).is_ok());
///
/// let now = Note { id: 1, text: "edited by someone else".into() };
/// let Err(CheckError::Conflict(conflict)) = tokens.check(token.value(), &now) else { panic!() };
/// assert_eq!(conflict.changed_inputs().unwrap()[0].name, "text");
/// ```
#[derive(Clone, Debug)]
pub struct Tokens {
    keys: KeyRing,
    field_name: Cow<'static, str>,
    max_age: Option<Duration>,
    max_skew: Duration,
}

/// The default for [`Tokens::with_max_age`]: 24 hours.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

impl Tokens {
    /// Tokens signed by `keys`, in field [`DEFAULT_FIELD_NAME`], valid for
    /// [`DEFAULT_MAX_AGE`], with 60 seconds of clock skew allowed.
    pub fn new(keys: KeyRing) -> Tokens {
        Tokens {
            keys,
            field_name: Cow::Borrowed(DEFAULT_FIELD_NAME),
            max_age: Some(DEFAULT_MAX_AGE),
            max_skew: Duration::from_secs(60),
        }
    }

    /// The form field tokens travel in.
    pub fn with_field_name(mut self, name: impl Into<Cow<'static, str>>) -> Tokens {
        self.field_name = name.into();
        self
    }

    /// How long a token stays valid (`None`: for ever). An older token is
    /// refused with a request to reload the form.
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Tokens {
        self.max_age = max_age;
        self
    }

    /// How far in the future a token's issue time may be (clocks of several
    /// servers disagree a little).
    pub fn with_max_skew(mut self, skew: Duration) -> Tokens {
        self.max_skew = skew;
        self
    }

    /// The key ring.
    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The form field tokens travel in.
    pub fn field_name(&self) -> &str {
        &self.field_name
    }

    /// A token for `form` as it renders now.
    pub fn issue<T: RenderState + ?Sized>(&self, form: &T) -> ConcurrencyToken {
        ConcurrencyToken::issue(&self.keys, form).with_field_name(self.field_name.clone())
    }

    /// A token for `state` that names `page` (the path and query of the
    /// page the form is on).
    pub(crate) fn issue_for_state_on(
        &self,
        form_name: &str,
        state: &FormState,
        page: Option<&str>,
    ) -> ConcurrencyToken {
        let digests = StateDigests::of(state, form_name, self.keys.signing_key());
        self.issue_for_digests_on(form_name, &digests, page)
    }

    /// A token for digests made with the signing key.
    pub(crate) fn issue_for_digests(
        &self,
        form_name: &str,
        digests: &StateDigests,
    ) -> ConcurrencyToken {
        self.issue_for_digests_on(form_name, digests, None)
    }

    /// A token for digests made with the signing key, naming `page`.
    pub(crate) fn issue_for_digests_on(
        &self,
        form_name: &str,
        digests: &StateDigests,
        page: Option<&str>,
    ) -> ConcurrencyToken {
        let key = self.keys.signing_key();
        ConcurrencyToken::sign(
            self.keys.signing_key_id(),
            key,
            form_name,
            digests,
            unix_seconds(SystemTime::now()),
            page,
        )
        .with_field_name(self.field_name.clone())
    }

    /// Decodes `token` and checks everything that needs no state: version,
    /// key, signature, age and form.
    pub(crate) fn open(&self, token: &[u8], form_name: &str) -> Result<Opened<'_>, TokenError> {
        let (claims, key) = Claims::decode(token, &self.keys)?;
        check_time(
            claims.issued_at,
            unix_seconds(SystemTime::now()),
            self.max_age,
            self.max_skew,
        )?;
        if claims.form != form_prefix(form_name, key) {
            return Err(TokenError::WrongForm);
        }
        Ok(Opened { claims, key })
    }

    /// Checks `token` against `current`, the form as it renders now:
    /// `Ok` when nothing the form shows has changed since the token was
    /// issued.
    pub fn check<T: RenderState + ?Sized>(
        &self,
        token: &str,
        current: &T,
    ) -> Result<(), CheckError> {
        let opened = self
            .open(token.as_bytes(), T::FORM_NAME)
            .map_err(CheckError::Token)?;
        opened.compare(T::FORM_NAME, &FormState::of(current))?;
        Ok(())
    }
}

/// A token whose signature, age and form have been checked.
pub(crate) struct Opened<'k> {
    pub(crate) claims: Claims,
    pub(crate) key: &'k Key,
}

impl Opened<'_> {
    /// Compares the token with the state the form renders now: `Ok` when
    /// nothing it covers has changed. Only a conflict needs the per-input
    /// digests (to name the fields); a current submission is checked with
    /// two digests.
    /// Whether the token names the record whose form state is `state`
    /// (whatever the form showed when the token was signed).
    pub(crate) fn names_record(&self, form_name: &str, state: &FormState) -> bool {
        check_digests(state, form_name, self.key).1 == self.claims.resource
    }

    pub(crate) fn compare(
        &self,
        form_name: &'static str,
        state: &FormState,
    ) -> Result<(), CheckError> {
        let (fingerprint, resource) = check_digests(state, form_name, self.key);
        if resource != self.claims.resource {
            return Err(CheckError::Token(TokenError::WrongResource));
        }
        if fingerprint == self.claims.fingerprint {
            return Ok(());
        }
        let now = StateDigests::of(state, form_name, self.key);
        Err(CheckError::Conflict(Box::new(Conflict::new(
            form_name,
            &self.claims,
            &now,
            state,
        ))))
    }
}

/// Why [`Tokens::check`] refused a token.
#[derive(Debug, Clone)]
pub enum CheckError {
    /// The token itself is wrong: altered, expired, another form's…
    Token(TokenError),
    /// The token is fine, but the data changed since the form was rendered.
    Conflict(Box<Conflict>),
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Token(e) => e.fmt(f),
            CheckError::Conflict(c) => c.fmt(f),
        }
    }
}

impl std::error::Error for CheckError {}

/// Checks the age of a token issued at `issued_at` against `now`.
fn check_time(
    issued_at: u32,
    now: u32,
    max_age: Option<Duration>,
    max_skew: Duration,
) -> Result<(), TokenError> {
    if issued_at > now {
        let ahead = Duration::from_secs(u64::from(issued_at - now));
        if ahead > max_skew {
            return Err(TokenError::IssuedInFuture { ahead });
        }
    }
    let age = Duration::from_secs(u64::from(now.saturating_sub(issued_at)));
    match max_age {
        Some(max_age) if age > max_age => Err(TokenError::Expired { age, max_age }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;

    struct Form {
        id: u32,
        inputs: Vec<String>,
    }

    impl RenderState for Form {
        const FORM_NAME: &'static str = "form";
        fn render_state(&self, s: &mut FormState) {
            s.key("id", &self.id);
            for (i, v) in self.inputs.iter().enumerate() {
                s.input(&format!("field{i}"), v);
            }
        }
    }

    fn ring() -> KeyRing {
        KeyRing::new(3, Key::from_bytes(&[9; 32]).unwrap())
    }

    #[test]
    fn time_checks() {
        let keys = ring();
        let form = Form {
            id: 1,
            inputs: vec![],
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let token = ConcurrencyToken::issue_at(&keys, &form, at);
        let (claims, _) = Claims::decode(token.value().as_bytes(), &keys).unwrap();
        let skew = Duration::from_secs(60);
        let hour = Some(Duration::from_secs(3600));
        assert!(check_time(claims.issued_at, 1_000_000, hour, skew).is_ok());
        assert!(check_time(claims.issued_at, 1_003_600, hour, skew).is_ok());
        assert!(matches!(
            check_time(claims.issued_at, 1_003_601, hour, skew),
            Err(TokenError::Expired { .. })
        ));
        assert!(check_time(claims.issued_at, 999_940, hour, skew).is_ok());
        assert!(matches!(
            check_time(claims.issued_at, 999_939, hour, skew),
            Err(TokenError::IssuedInFuture { .. })
        ));
        assert!(check_time(claims.issued_at, u32::MAX, None, skew).is_ok());
    }
}
