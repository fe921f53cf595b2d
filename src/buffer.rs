//! Byte buffers on the hot paths: scratch space on the stack, a search that looks near first.

/// Runs `f` on a zeroed buffer of `len` bytes: on the stack when it fits in
/// `N` bytes (the common case on every request), else on the heap.
pub(crate) fn with_buffer<const N: usize, R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    if len <= N {
        f(&mut [0u8; N][..len])
    } else {
        f(&mut vec![0u8; len])
    }
}

/// Where the first `byte` of `haystack` is, as `memchr` finds it. What the
/// guard looks for is mostly a few bytes away (the `=` after a field name,
/// the `<` after the blanks between two tags): a plain look at the first
/// bytes finds it before `memchr` would have set up.
pub(crate) fn find_near(byte: u8, haystack: &[u8]) -> Option<usize> {
    const NEAR: usize = 32;
    let near = &haystack[..haystack.len().min(NEAR)];
    match near.iter().position(|&b| b == byte) {
        Some(i) => Some(i),
        None if haystack.len() > NEAR => memchr::memchr(byte, &haystack[NEAR..]).map(|i| i + NEAR),
        None => None,
    }
}
