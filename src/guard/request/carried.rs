//! The token a safe request carries: a form re-rendered while it is open
//! (a dependent select's `hx-get` with `hx-include` of the form) keeps the
//! token it was opened with.
//!
//! A fresh token would be signed for the record as it is *now*: a change
//! another user saved since the form was opened would be absorbed, and the
//! user's next save would overwrite it unchecked. So a GET or HEAD that
//! carries a token of this form for this record, in the `x-concurrency-token`
//! header or the token's field in its query string, gets that same token
//! back: handed to the handler ([`ConcurrencyToken`]) and embedded in the
//! page. An expired one is kept too (its submission is refused, never
//! checked against data it did not show). A token of another record or
//! form, or one that does not verify, is ignored: the page gets a fresh one.

use http::request::Parts;

use super::TOKEN_HEADER;
use super::urlencoded::scan_urlencoded_token;
use crate::guard::config::Config;
use crate::state::FormState;
use crate::token::ConcurrencyToken;
use crate::token_error::TokenError;

/// The header value that marks the early warning's check request (a GET
/// asking "is this token still current?", answered 204 or 409 without the
/// handler), as opposed to a re-render carrying its token.
pub(crate) const CHECK_MARKER: (&str, &str) = ("x-concurrency-guard", "check");

/// Whether a safe request is the early warning's check request.
pub(crate) fn is_check_request(parts: &Parts) -> bool {
    parts.headers.contains_key(TOKEN_HEADER)
        && parts
            .headers
            .get(CHECK_MARKER.0)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(CHECK_MARKER.1.as_bytes()))
}

/// The token the request carries for this form and record, to keep.
pub(crate) fn carried_token(
    config: &Config,
    form: &'static str,
    parts: &Parts,
    current: &FormState,
) -> Option<ConcurrencyToken> {
    let field = config.tokens.field_name();
    let text = match parts.headers.get(TOKEN_HEADER) {
        Some(value) => value.to_str().ok()?.trim().to_owned(),
        None => {
            let query = parts.uri.query()?;
            scan_urlencoded_token(query.as_bytes(), field)
                .ok()?
                .into_owned()
        }
    };
    let keep = match config.tokens.open(text.as_bytes(), form) {
        Ok(opened) => opened.names_record(form, current),
        Err(TokenError::Expired { .. }) => true,
        Err(e) => {
            tracing::debug!(form, reason = %e, "a carried token is not kept");
            false
        }
    };
    if !keep {
        tracing::debug!(form, "a carried token of another record is not kept");
        return None;
    }
    let token = ConcurrencyToken::carried(&text, config.tokens.field_name().to_owned().into())?;
    tracing::debug!(form, "the token the request carried is kept");
    Some(token)
}
