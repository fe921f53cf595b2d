//! Compile-time behaviour of `#[derive(RenderState)]`: what compiles, and the
//! errors for what does not (`tests/ui/{pass,fail}`). Regenerate the expected
//! errors with `TRYBUILD=overwrite cargo test --test derive_ui`, then read them.

#[test]
fn derive_ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
