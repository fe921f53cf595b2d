//! The forms of a page as the rewriter meets them: each form's token is put
//! first inside it at once, held back from the client, and kept or taken
//! out again when the form ends (its `</form>`, the next form, or the page's
//! end), once everything that decides it has been seen (the rules in
//! `rules`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::output::SharedOutput;
use super::rules::{Method, Origin};

/// What the form handler tells the body about its progress.
#[derive(Debug)]
pub(super) struct Progress {
    /// Where the start tag of the last form handled begins (`usize::MAX`: none yet).
    pub(super) last_form: AtomicUsize,
    /// How many bytes were inserted so far (and not taken out again).
    pub(super) inserted: AtomicUsize,
    /// A form's token is held: its form has not ended yet.
    pub(super) open: AtomicBool,
    /// A start tag was rewritten (`hx-headers`): the output is no longer
    /// the page plus insertions.
    pub(super) modified: AtomicBool,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            last_form: AtomicUsize::new(usize::MAX),
            inserted: AtomicUsize::new(0),
            open: AtomicBool::new(false),
            modified: AtomicBool::new(false),
        }
    }
}

/// Where one form's token went, filled in when lol_html writes it out.
#[derive(Debug, Default)]
pub(super) struct Slot {
    /// `Some(false)`: taken out before it was written; write nothing.
    dropped: bool,
    /// Where in the whole output it starts, once written.
    at: Option<usize>,
}

/// The form being read.
#[derive(Debug)]
struct Region {
    slot: Arc<Mutex<Slot>>,
    text: String,
    with_once: bool,
    /// The form's own method and action (for submitters without overrides).
    method: Method,
    action: Option<String>,
    /// One of its submissions is a POST to this origin.
    posts_here: bool,
    /// One of its submissions goes to another origin.
    leaks: bool,
    /// It already carries an input named the token field.
    has_token: bool,
    /// An htmx element in it got the token in its `hx-headers`: the early
    /// warning's script (`with_once`) stays, even if the hidden input goes.
    hx_token: bool,
}

/// The rewriter's state across its handlers.
#[derive(Debug)]
pub(super) struct Forms {
    pub(super) hidden_input: String,
    pub(super) field: String,
    pub(super) once: Option<String>,
    pub(super) origin: Origin,
    open: Option<Region>,
    /// The htmx script, until it is placed.
    htmx: Option<String>,
    /// The page has used htmx so far.
    htmx_seen: bool,
    /// A token is on the page for good (a kept form's, or an `hx-headers`).
    token_kept: bool,
    out: SharedOutput,
    progress: Arc<Progress>,
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

impl Forms {
    pub(super) fn new(
        embedding: super::embedding::Embedding,
        out: SharedOutput,
        progress: Arc<Progress>,
    ) -> Forms {
        Forms {
            origin: Origin::new(embedding.host.as_deref()),
            hidden_input: embedding.hidden_input,
            field: embedding.field,
            once: embedding.once,
            open: None,
            htmx: embedding.htmx_script,
            htmx_seen: false,
            token_kept: false,
            out,
            progress,
        }
    }

    /// A form starts: the one before it ends, and this one's token is put
    /// in, held. Returns the slot and text for the streaming handler.
    pub(super) fn open(
        &mut self,
        method: Method,
        action: Option<String>,
    ) -> (Arc<Mutex<Slot>>, String) {
        self.close();
        let mut text = self.hidden_input.clone();
        let once = self.once.take();
        let with_once = once.is_some();
        if let Some(once) = once {
            text.push_str(&once);
        }
        let slot = Arc::new(Mutex::new(Slot::default()));
        let mut region = Region {
            slot: slot.clone(),
            text: text.clone(),
            with_once,
            method,
            action,
            posts_here: false,
            leaks: false,
            has_token: false,
            hx_token: false,
        };
        let own_method = region.method;
        let own_action = region.action.clone();
        self.submission(&mut region, own_method, own_action.as_deref());
        {
            let mut out = self.out.lock();
            let total = out.taken + out.buf.len();
            out.hold = Some(total);
        }
        self.progress
            .inserted
            .fetch_add(text.len(), Ordering::Relaxed);
        self.progress.open.store(true, Ordering::Relaxed);
        self.open = Some(region);
        (slot, text)
    }

    fn submission(&self, region: &mut Region, method: Method, action: Option<&str>) {
        if method == Method::Dialog {
            return;
        }
        if !self.origin.is_this(action) {
            region.leaks = true;
        } else if method == Method::Post {
            region.posts_here = true;
        }
    }

    /// A submit button of the open form, with its `formmethod` and
    /// `formaction` (HTML: they override the form's).
    pub(super) fn submitter(&mut self, formmethod: Option<&str>, formaction: Option<String>) {
        let Some(mut region) = self.open.take() else {
            return;
        };
        let method = match formmethod {
            Some(m) => Method::of(Some(m)),
            None => region.method,
        };
        let action = formaction.or_else(|| region.action.clone());
        self.submission(&mut region, method, action.as_deref());
        self.open = Some(region);
    }

    /// An input named the token field in the open form.
    pub(super) fn token_input(&mut self) {
        if let Some(region) = &mut self.open {
            region.has_token = true;
        }
    }

    /// Whether `slot` is the open form's.
    pub(super) fn is_open(&self, slot: &Arc<Mutex<Slot>>) -> bool {
        self.open
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(&r.slot, slot))
    }

    /// The open form ends: its token is kept, or taken out of the output.
    pub(super) fn close(&mut self) {
        let Some(region) = self.open.take() else {
            return;
        };
        let keep = region.posts_here && !region.leaks && !region.has_token;
        if region.posts_here && region.leaks {
            tracing::warn!(
                "auto-embed: a form posts here but also submits to another origin (its action or a button's formaction): no token put in it (it would go along); render the token in the form yourself if that is meant"
            );
        }
        let mut out = self.out.lock();
        if keep {
            self.token_kept = true;
            let at = lock(&region.slot).at;
            if let (true, Some(at)) = (self.htmx_seen, at) {
                // Right after the form's token, still held in the output.
                let end = at
                    .checked_sub(out.taken)
                    .map(|from| from + region.text.len())
                    .filter(|&end| end <= out.buf.len());
                if let (Some(end), Some(script)) = (end, self.htmx.take()) {
                    out.buf.splice(end..end, script.bytes());
                    self.progress
                        .inserted
                        .fetch_add(script.len(), Ordering::Relaxed);
                    self.progress.modified.store(true, Ordering::Relaxed);
                }
            }
        }
        if !keep {
            let mut slot = lock(&region.slot);
            let mut removed = slot.at.is_none();
            // Only the hidden input goes when the script serves an htmx
            // element's token in this form.
            let script_stays = region.hx_token && region.with_once && slot.at.is_some();
            let cut = if script_stays {
                self.hidden_input.len()
            } else {
                region.text.len()
            };
            if let Some(at) = slot.at {
                let from = at.checked_sub(out.taken);
                let end = from.map(|f| f + region.text.len());
                if let (Some(from), Some(end)) = (from, end) {
                    if out.buf.get(from..end) == Some(region.text.as_bytes()) {
                        out.buf.drain(from..from + cut);
                        removed = true;
                    }
                }
            }
            slot.dropped = true;
            if removed {
                self.progress.inserted.fetch_sub(cut, Ordering::Relaxed);
                if script_stays {
                    self.progress.modified.store(true, Ordering::Relaxed);
                } else if region.with_once {
                    self.once = Some(region.text[self.hidden_input.len()..].to_owned());
                }
            } else {
                tracing::warn!("auto-embed: a token could not be taken out of a form again");
            }
        }
        out.hold = None;
        self.progress.open.store(false, Ordering::Relaxed);
    }
}

impl Forms {
    /// An element with an htmx attribute (`inert`: inside a `<template>`):
    /// the page uses htmx. The htmx script, to put before the element, when
    /// a token is already on the page and the script is not.
    pub(super) fn htmx_used(&mut self, inert: bool) -> Option<String> {
        self.htmx_seen = true;
        if inert || !self.token_kept {
            return None;
        }
        self.take_htmx()
    }

    /// A token went into an htmx element's `hx-headers`: the early
    /// warning's script (unless the open form holds it: it stays there) and
    /// the htmx script, to put after the element, if not placed yet.
    pub(super) fn hx_headers_token(&mut self) -> Option<String> {
        self.htmx_seen = true;
        self.token_kept = true;
        let mut scripts = String::new();
        match &mut self.open {
            Some(region) if region.with_once => region.hx_token = true,
            _ => scripts.extend(self.once.take()),
        }
        scripts.extend(self.take_htmx());
        (!scripts.is_empty()).then_some(scripts)
    }

    fn take_htmx(&mut self) -> Option<String> {
        let script = self.htmx.take()?;
        self.progress.modified.store(true, Ordering::Relaxed);
        Some(script)
    }

    /// Whether the page gets the htmx script at all.
    pub(super) fn wants_htmx(&self) -> bool {
        self.htmx.is_some()
    }
}

/// Writes a form's token where lol_html puts the form's content, and notes
/// where it went.
pub(super) fn write_token(
    slot: &Mutex<Slot>,
    out: &SharedOutput,
    text: &str,
    sink: &mut lol_html::html_content::StreamingHandlerSink<'_>,
) {
    let mut slot = lock(slot);
    if slot.dropped {
        return;
    }
    slot.at = Some(out.total());
    sink.write_str(text, lol_html::html_content::ContentType::Html);
}
