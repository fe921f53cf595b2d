//! The token in template engines: trusted HTML under their default escaping, and in serde contexts.
//!
//! `ConcurrencyToken`'s `Display` is the hidden input. An auto-escaping
//! engine would escape it into visible text (and the form would carry no
//! token), so each engine's feature marks it trusted through the engine's
//! own mechanism:
//!
//! | feature | engine mechanism | in the template |
//! |---|---|---|
//! | `askama` (askama 0.16; `askama-0-15`, `askama-0-14` for apps on those) | `askama::filters::HtmlSafe` | `{{ token }}` |
//! | `minijinja` | `minijinja::Value::from_safe_string` (`From<ConcurrencyToken>`, and `Serialize` inside `context!`) | `{{ token }}` |
//! | `maud` | `maud::Render` | `(token)` |
//!
//! Without a feature, any engine works with `{{ token.value() }}` (or the
//! serialized token, which is its value) inside a hidden input written in
//! the template: `<input type="hidden" name="_concurrency_token" value="{{ token }}">`.
//! Tera gets no feature: its context is `serde_json` values, with no type
//! an engine could trust, and its auto-escaping applies to every string
//! unless the template's last filter is `safe` (so `{{ token_input | safe }}`
//! with `token.hidden_input()` inserted, or the input written around the
//! serialized token as above).

use serde::{Serialize, Serializer};

use crate::token::ConcurrencyToken;

/// The token's text ([`ConcurrencyToken::value`]), for engines that take a
/// serde context (tera, handlebars…): write the hidden input in the
/// template around it. With the `minijinja` feature, a token serialized
/// into a minijinja value (`context! { token }`) is the hidden input as a
/// safe string instead, as [`From<ConcurrencyToken>`] for `minijinja::Value` makes it.
impl Serialize for ConcurrencyToken {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[cfg(feature = "minijinja")]
        if minijinja::value::serializing_for_value() {
            return minijinja::Value::from_safe_string(self.hidden_input()).serialize(serializer);
        }
        serializer.serialize_str(self.value())
    }
}

/// `{{ token }}` in an askama template writes the hidden input, unescaped.
#[cfg(feature = "askama")]
#[cfg_attr(docsrs, doc(cfg(feature = "askama")))]
impl askama::filters::HtmlSafe for ConcurrencyToken {}

/// As with the `askama` feature, for an app on askama 0.15.
#[cfg(feature = "askama-0-15")]
#[cfg_attr(docsrs, doc(cfg(feature = "askama-0-15")))]
impl askama_015::filters::HtmlSafe for ConcurrencyToken {}

/// As with the `askama` feature, for an app on askama 0.14.
#[cfg(feature = "askama-0-14")]
#[cfg_attr(docsrs, doc(cfg(feature = "askama-0-14")))]
impl askama_014::filters::HtmlSafe for ConcurrencyToken {}

/// The hidden input as a safe string: `{{ token }}` writes it unescaped
/// under minijinja's auto-escaping.
#[cfg(feature = "minijinja")]
#[cfg_attr(docsrs, doc(cfg(feature = "minijinja")))]
impl From<ConcurrencyToken> for minijinja::Value {
    fn from(token: ConcurrencyToken) -> minijinja::Value {
        minijinja::Value::from_safe_string(token.hidden_input())
    }
}

/// `(token)` in `maud::html!` writes the hidden input (already escaped).
#[cfg(feature = "maud")]
#[cfg_attr(docsrs, doc(cfg(feature = "maud")))]
impl maud::Render for ConcurrencyToken {
    fn render_to(&self, buffer: &mut String) {
        // Writing to a `String` cannot fail.
        let _ = self.write_hidden_input(buffer);
    }
}

#[cfg(test)]
mod tests {
    /// The token is trusted HTML for every askama version a feature names:
    /// the trait of the app's own askama is the one its templates consult.
    #[test]
    #[cfg(all(feature = "askama", feature = "askama-0-15", feature = "askama-0-14"))]
    fn every_askama_version_trusts_the_token() {
        fn trusted<
            T: askama::filters::HtmlSafe
                + askama_015::filters::HtmlSafe
                + askama_014::filters::HtmlSafe,
        >() {
        }
        trusted::<crate::ConcurrencyToken>();
    }

    use crate::{ConcurrencyToken, FormState, Key, KeyRing, RenderState};

    struct Note;
    impl RenderState for Note {
        const FORM_NAME: &'static str = "note";
        fn render_state(&self, s: &mut FormState) {
            s.key("id", &1);
        }
    }

    #[test]
    fn serializes_to_its_value() {
        let token = ConcurrencyToken::issue(&KeyRing::from(Key::generate()), &Note);
        let json = serde_json::to_string(&token).unwrap();
        assert_eq!(json, format!("\"{}\"", token.value()));
    }
}
