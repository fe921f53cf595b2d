//! What the rewriter has put out, held back while a form is read.

use std::sync::{Arc, Mutex, MutexGuard};

/// What the rewriter has put out, and how much of it may go to the client.
#[derive(Debug, Default)]
pub(super) struct Output {
    pub(super) buf: Vec<u8>,
    /// How many bytes were taken from the front of `buf` so far.
    pub(super) taken: usize,
    /// From this offset in the whole output on, nothing may be taken yet.
    pub(super) hold: Option<usize>,
}

#[derive(Clone, Default, Debug)]
pub(super) struct SharedOutput(Arc<Mutex<Output>>);

impl SharedOutput {
    pub(super) fn lock(&self) -> MutexGuard<'_, Output> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What may go to the client now (all of it when nothing is held).
    pub(super) fn take(&self) -> Vec<u8> {
        let mut out = self.lock();
        let free = match out.hold {
            Some(hold) => hold.saturating_sub(out.taken).min(out.buf.len()),
            None => out.buf.len(),
        };
        out.taken += free;
        if free == out.buf.len() {
            std::mem::take(&mut out.buf)
        } else {
            out.buf.drain(..free).collect()
        }
    }

    /// Lets everything go: the held form is sent as it is now.
    pub(super) fn release(&self) {
        self.lock().hold = None;
    }

    /// How many bytes are waiting, held or not.
    pub(super) fn waiting(&self) -> usize {
        self.lock().buf.len()
    }

    /// The length of the whole output so far.
    #[cfg_attr(not(feature = "html-rewriter"), allow(dead_code))]
    pub(super) fn total(&self) -> usize {
        let out = self.lock();
        out.taken + out.buf.len()
    }

    #[cfg_attr(not(feature = "html-rewriter"), allow(dead_code))]
    pub(super) fn push(&self, chunk: &[u8]) {
        if !chunk.is_empty() {
            self.lock().buf.extend_from_slice(chunk);
        }
    }
}

#[cfg(feature = "html-rewriter")]
impl lol_html::OutputSink for SharedOutput {
    fn handle_chunk(&mut self, chunk: &[u8]) {
        self.push(chunk);
    }
}
