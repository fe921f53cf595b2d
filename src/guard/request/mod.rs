//! Reading a submission: where its token is (header, urlencoded or
//! multipart body), within the body limit, and its preconditions.

pub(crate) mod carried;
pub(crate) mod conditional;
pub(crate) mod cross_origin;
mod limit;
pub(crate) mod multipart;
mod replay;
mod source;
mod timeout;
pub(crate) mod token;
pub(crate) mod urlencoded;

pub(crate) use limit::{Reading, buffer};
pub(crate) use source::{TOKEN_HEADER, TokenSource};
pub(crate) use timeout::whole_seconds;
pub(crate) use token::{Found, find_token};
