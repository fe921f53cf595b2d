//! Finding a submission's token without taking the body from the handler.
//!
//! - header [`HEADER_NAME`](crate::token::HEADER_NAME): the body is not
//!   scanned, except an urlencoded one, which is read as below (htmx sends
//!   a form's token both in the header and in its hidden input): a token
//!   field there must carry the same token, and is cut out;
//! - `application/x-www-form-urlencoded`: the body is buffered up to the
//!   limit and the same bytes are handed on, the token's pairs cut out (so
//!   a `#[serde(deny_unknown_fields)]` form type works);
//! - `multipart/form-data`: parts are read in order only until the token
//!   part; what was read is replayed in front of the rest of the stream, so
//!   a file after the token is never buffered. The token part is replayed
//!   too: multipart extractors hand parts one by one and the handler skips
//!   the ones it does not know;
//! - the query string's token field, where neither the header nor the body
//!   carries one (htmx 2 sends a `DELETE`'s parameters in the URL, its
//!   `methodsThatUseUrlParams`): cut out of the URI handed on. Wherever
//!   else a token comes from, one in the query must be the same.

use axum::body::Body;
use axum::extract::OriginalUri;
use bytes::Bytes;
use http::request::Parts;
use http::uri::PathAndQuery;
use http::{Uri, header};

use super::limit::{Reading, axum_limit, buffer, declared_length};
use super::multipart::{PrefixCap, PrefixLimits};
use super::source::{TOKEN_HEADER, TokenSource, body_token, query_token};
use super::{multipart, urlencoded};
use crate::guard::config::{BODY_CEILING, BodyLimit};
use crate::guard::rejection::Rejection;
use crate::token_error::TokenError;

/// Where the token was found, and the body to hand on.
pub(crate) struct Found {
    /// The token's text: a slice of the buffered body where it needed no
    /// decoding (the decoder checks the bytes itself).
    pub(crate) token: Bytes,
    pub(crate) body: Body,
    /// The urlencoded body, when it was buffered (to show the user what
    /// they typed if the submission conflicts).
    pub(crate) form: Option<Bytes>,
}

/// Finds the token of a submission, from `source` (its headers, read by
/// [`TokenSource::of`]). Takes the parts only to apply the body limit, and
/// gives them back at once: the future holds the body and its reader alone.
///
/// Every body comes back read by the guard (urlencoded; with
/// `buffer_other`, any body but multipart, for a write the guard locks) or
/// under the read timeout (multipart, streamed).
pub(crate) async fn find_token(
    source: TokenSource,
    parts: &mut Parts,
    body: Body,
    field: &str,
    reading: Reading,
    multipart_prefix_limit: Option<usize>,
    buffer_other: bool,
) -> Result<Found, Rejection> {
    let in_query = query_token(&parts.uri, field)?;
    let found = match source {
        TokenSource::Header => {
            let token = match parts.headers.get(TOKEN_HEADER).map(|v| v.to_str()) {
                Some(Ok(token)) => Bytes::copy_from_slice(token.trim().as_bytes()),
                _ => {
                    return Err(Rejection::InvalidToken(TokenError::Malformed {
                        reason: "the header is not base64url text",
                    }));
                }
            };
            outside_body(token, parts, body, field, reading, buffer_other).await?
        }
        TokenSource::Query => {
            // `of` saw the field: `in_query` holds it.
            let token = in_query.clone().unwrap_or_default();
            outside_body(token, parts, body, field, reading, buffer_other).await?
        }
        TokenSource::UrlEncoded => {
            let bytes = buffer(parts, body, reading).await?;
            let token = match (body_token(&bytes, field)?, &in_query) {
                (Some(token), _) => token,
                (None, Some(token)) => token.clone(),
                (None, None) => {
                    return Err(Rejection::MissingToken {
                        field: field.to_owned(),
                    });
                }
            };
            let body = form_handed_on(parts, &bytes, field);
            Found {
                token,
                body,
                form: Some(bytes),
            }
        }
        TokenSource::Multipart(Ok(boundary)) => {
            // Only the prefix up to the token part is buffered; the rest
            // streams to the handler as it comes, so the whole body answers
            // to the route's limit through the handler's own extractor
            // (axum's `Multipart` answers 413 exactly as without the guard).
            let route = multipart_within_route_limit(parts)?;
            let limits = prefix_limits(route, reading.limit, multipart_prefix_limit);
            let body = reading.timed(body);
            // Boxed: its scanner is large, and a urlencoded submission
            // should not carry its room in every request's future.
            let (token, body) = Box::pin(multipart::read_multipart_prefix(
                body, &boundary, field, limits,
            ))
            .await?;
            let Some(token) = token else {
                return Err(Rejection::MissingToken {
                    field: field.to_owned(),
                });
            };
            Found {
                token,
                body,
                form: None,
            }
        }
        TokenSource::Multipart(Err(reason)) => return Err(Rejection::BadMultipart { reason }),
        TokenSource::None => {
            return Err(Rejection::MissingToken {
                field: field.to_owned(),
            });
        }
        TokenSource::Other => {
            return Err(Rejection::UnsupportedMediaType {
                content_type: match parts.headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) {
                    Some(Ok(value)) => value.to_owned(),
                    _ => "(not valid text)".to_owned(),
                },
            });
        }
    };
    if let Some(in_query) = in_query {
        if in_query != found.token {
            return Err(Rejection::DuplicateTokens);
        }
        parts.uri = without_query_field(&parts.uri, field);
        // The URL as sent (a nested router's `OriginalUri`) loses it too:
        // the guard's links and the handler's `OriginalUri` never carry it.
        if let Some(original) = parts.extensions.get_mut::<OriginalUri>() {
            original.0 = without_query_field(&original.0, field);
        }
    }
    Ok(found)
}

/// Whether a form body (or the query string) carries a token, read before
/// [`find_token`] only where `If-Match` may stand in for a missing one: the
/// body comes back to be read again (urlencoded: buffered; multipart: the
/// parts read replayed in front of the rest).
pub(crate) async fn form_carries_token(
    source: &TokenSource,
    parts: &mut Parts,
    body: Body,
    field: &str,
    reading: Reading,
    multipart_prefix_limit: Option<usize>,
) -> Result<(bool, Body), Rejection> {
    if query_token(&parts.uri, field)?.is_some() {
        return Ok((true, body));
    }
    match source {
        TokenSource::UrlEncoded => {
            let bytes = buffer(parts, body, reading).await?;
            let carries = body_token(&bytes, field)?.is_some();
            Ok((carries, Body::from(bytes)))
        }
        TokenSource::Multipart(Ok(boundary)) => {
            let route = multipart_within_route_limit(parts)?;
            let limits = prefix_limits(route, reading.limit, multipart_prefix_limit);
            let (token, body) = Box::pin(multipart::read_multipart_prefix(
                reading.timed(body),
                boundary,
                field,
                limits,
            ))
            .await?;
            Ok((token.is_some(), body))
        }
        _ => Ok((true, body)),
    }
}

/// A token from the header or the query: the body is handed on as it came
/// (streamed when multipart; buffered before the lock otherwise, with
/// `buffer_other`), except an urlencoded one, which is read as a form: a
/// token field in it must carry the same token, and is cut out.
async fn outside_body(
    token: Bytes,
    parts: &mut Parts,
    body: Body,
    field: &str,
    reading: Reading,
    buffer_other: bool,
) -> Result<Found, Rejection> {
    let (body, form) = match TokenSource::of_body(&parts.headers) {
        TokenSource::UrlEncoded => {
            let bytes = buffer(parts, body, reading).await?;
            if let Some(in_body) = body_token(&bytes, field)? {
                if in_body != token {
                    return Err(Rejection::DuplicateTokens);
                }
            }
            (form_handed_on(parts, &bytes, field), Some(bytes))
        }
        TokenSource::Multipart(_) => {
            // The handler's own extractor applies the route's limit to every
            // byte; a declared length over it is refused here, before reading.
            multipart_within_route_limit(parts)?;
            (reading.timed(body), None)
        }
        _ if buffer_other => (Body::from(buffer(parts, body, reading).await?), None),
        _ => (body, None),
    };
    Ok(Found { token, body, form })
}

/// The urlencoded body the handler gets: the token's pairs cut out, so its
/// `Form<T>` sees the fields it declares, not the guard's (a
/// `deny_unknown_fields` type would refuse it).
fn form_handed_on(parts: &mut Parts, bytes: &Bytes, field: &str) -> Body {
    match urlencoded::without_field(bytes, field) {
        Some(stripped) => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, stripped.len().into());
            Body::from(stripped)
        }
        None => Body::from(bytes.clone()),
    }
}

/// `uri` without the query's pairs named `field`: what the handler's
/// `Query<T>` reads. The path, and every other byte of the query, as sent.
fn without_query_field(uri: &Uri, field: &str) -> Uri {
    let Some(query) = uri.query() else {
        return uri.clone();
    };
    let Some(kept) = urlencoded::without_field(&Bytes::copy_from_slice(query.as_bytes()), field)
    else {
        return uri.clone();
    };
    let path = uri.path();
    let path_and_query = if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", String::from_utf8_lossy(&kept))
    };
    let mut uri_parts = uri.clone().into_parts();
    match PathAndQuery::try_from(path_and_query) {
        Ok(pq) => uri_parts.path_and_query = Some(pq),
        Err(_) => return uri.clone(),
    }
    Uri::from_parts(uri_parts).unwrap_or_else(|_| uri.clone())
}

/// The route's limit for a multipart body (`None`: disabled), refusing at
/// once (413) a declared length over it.
fn multipart_within_route_limit(parts: &mut Parts) -> Result<Option<usize>, Rejection> {
    let route = axum_limit(parts);
    match (route, declared_length(parts)) {
        (Some(route), Some(declared)) if declared > route as u64 => {
            Err(Rejection::PayloadTooLarge { limit: None })
        }
        _ => Ok(route),
    }
}

/// How far the guard reads a multipart body for its token: the prefix
/// limit where set; else the guard's body limit where set; else the route's,
/// never over the guard's ceiling of what it buffers.
fn prefix_limits(
    route: Option<usize>,
    body_limit: BodyLimit,
    prefix_limit: Option<usize>,
) -> PrefixLimits {
    let (buffer, buffer_is) = match (prefix_limit, body_limit) {
        (Some(n), _) => (n, PrefixCap::Prefix),
        (None, BodyLimit::Bytes(n)) => (n, PrefixCap::BodyLimit),
        (None, BodyLimit::Axum) => (
            route.map_or(BODY_CEILING, |r| r.min(BODY_CEILING)),
            PrefixCap::Prefix,
        ),
    };
    PrefixLimits {
        route,
        buffer,
        buffer_is,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use http::Request;
    use http_body_util::BodyExt as _;

    async fn urlencoded(frames: &[&'static str], limit: BodyLimit) -> Result<Found, Rejection> {
        let (mut parts, ()) = Request::new(()).into_parts();
        let frames = frames.iter().map(|f| Bytes::from_static(f.as_bytes()));
        let body = Body::new(crate::guard::response::embed::Frames(frames.collect()));
        let reading = Reading {
            limit,
            timeout: std::time::Duration::from_secs(5),
        };
        find_token(
            TokenSource::UrlEncoded,
            &mut parts,
            body,
            "t",
            reading,
            Some(1024),
            true,
        )
        .await
    }

    #[tokio::test]
    async fn a_body_in_several_frames_is_read_whole_and_handed_on() {
        let frames = ["a=1&t=to", "ken&b=2", "", "&c=3"];
        for n in 1..=frames.len() {
            let whole = frames[..n].concat();
            let found = urlencoded(&frames[..n], BodyLimit::Bytes(100))
                .await
                .unwrap_or_else(|e| panic!("{n} frames: {e}"));
            let expected = if n == 1 { "to" } else { "token" };
            assert_eq!(found.token, expected, "{n} frames");
            assert_eq!(found.form.as_deref(), Some(whole.as_bytes()));
            let handed_on = found.body.collect().await.unwrap().to_bytes();
            // The token's pair cut out, the rest as sent.
            let without_token: Vec<&str> =
                whole.split('&').filter(|p| !p.starts_with("t=")).collect();
            assert_eq!(handed_on, without_token.join("&").as_bytes(), "{n} frames");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_whichever_frame_crosses_it() {
        for limit in [3, 8, 10, 14] {
            let found = urlencoded(&["a=1&t=to", "ken&b=2"], BodyLimit::Bytes(limit)).await;
            assert!(
                matches!(found, Err(Rejection::PayloadTooLarge { limit: Some(l) }) if l == limit),
                "limit {limit}"
            );
        }
    }
}
