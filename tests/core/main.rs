//! The core without HTTP: the pinned test vectors (`tests/vectors.txt`),
//! property tests of the encoding and the token, and the derive through the
//! public API. One test binary, so the tests link once.

mod derive;
mod properties;
mod vectors;
