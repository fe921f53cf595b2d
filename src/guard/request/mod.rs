//! Reading a submission: where its token is (header, urlencoded or
//! multipart body), within the body limit, and its preconditions.

pub(crate) mod carried;
pub(crate) mod conditional;
pub(crate) mod cross_origin;
mod limit;
pub(crate) mod multipart;
mod replay;
mod timeout;
mod token;
pub(crate) mod urlencoded;

pub(crate) use limit::{Reading, buffer};
pub(crate) use timeout::whole_seconds;
pub(crate) use token::{Found, TOKEN_HEADER, TokenSource, find_token};
