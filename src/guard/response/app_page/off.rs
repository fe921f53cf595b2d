//! Without the `html-rewriter` feature: the application's page is never
//! rewritten, so conflicts and refusals get the guard's own page.

use axum::body::Body;
use bytes::Bytes;
use http::Response;

use crate::conflict::Conflict;
use crate::guard::BoxError;
use crate::guard::response::AnswerContext;

/// Always `None`: the guard's own conflict page answers instead.
pub(crate) async fn answer<B>(
    _page: Response<B>,
    _conflict: &Conflict,
    _answer: &AnswerContext,
    _auto_embed: bool,
) -> Option<Response<Body>>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    None
}

/// Always `refused` as it is: the guard's own refusal page.
pub(crate) async fn refusal<B>(
    _page: Response<B>,
    refused: Response<Body>,
    _answer: &AnswerContext,
) -> Response<Body>
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    refused
}
