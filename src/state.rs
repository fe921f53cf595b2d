//! What a form shows: the [`RenderState`] trait and the [`FormState`] it writes.
//!
//! A form's state is a list of entries (inputs, context values, key parts),
//! each in the canonical encoding the digests are taken of; see [`EntryKind`]
//! for what each kind of entry does and [`crate::fingerprint`] for the
//! encoding.

use std::fmt;
use std::ops::Range;

use smallvec::SmallVec;

use crate::entry::{Control, EntryKind, encode_entry};
use crate::value::{RenderValue, Rendered};

/// A form whose rendered state the guard checks.
///
/// Usually derived: `#[derive(RenderState)]` (feature `derive`, on by
/// default) writes one entry per field in declaration order. Field options,
/// all under `#[render_state(...)]`:
///
/// - *(none)*: an input named after the field;
/// - `skip`: takes no part (a view counter, a last-seen timestamp);
/// - `context`: shown but not editable; a change still conflicts;
/// - `key`: the resource's identity; binds tokens to one record;
/// - `rename = "name"`: the form field's name when it differs from the Rust name;
/// - `with = path`: render through `fn(&FieldType) -> impl RenderValue`;
/// - `checkbox`, `radio`: the input is a checkbox (radio group), submitted
///   only when checked: its value renders empty when unchecked (see
///   [`Control`]; a `bool` is a checkbox without being told);
/// - `label = "Name"`: the words a person reads for the field, used where
///   the guard names it (a conflict's alert and page) when the page has no
///   `<label>` for it (see [`FormState::label`]).
///
/// On the struct, `#[render_state(form = "name")]` sets [`FORM_NAME`](RenderState::FORM_NAME)
/// (default: the struct's name).
///
/// ```
/// use concurrency_guard::{FormState, RenderState};
///
/// #[derive(RenderState)]
/// struct ItemForm {
///     #[render_state(key)]
///     id: i64,
///     name: String,
///     #[render_state(with = two_decimals)]
///     price: f64,
///     #[render_state(skip)]
///     views: i64,
///     #[render_state(context)]
///     stock: i64,
/// }
///
/// fn two_decimals(v: &f64) -> String { format!("{v:.2}") }
///
/// let item = ItemForm { id: 7, name: "Lamp".into(), price: 9.5, views: 3, stock: 12 };
/// let state = FormState::of(&item);
/// assert_eq!(state.input_named("price").unwrap().value(), "9.50");
/// assert!(state.input_named("views").is_none());
/// ```
///
/// Values are strings *as rendered*: what `<input value="…">` shows. The
/// [`RenderValue`] trait says how a Rust value renders; implement it for your
/// own types, or pick a function per field with
/// `#[render_state(with = path)]`.
///
/// # A hand-written impl
///
/// Hand-written impls are first class; a widget may add several entries:
///
/// ```
/// use concurrency_guard::{FormState, RenderState};
///
/// struct Counter { id: i64, label: String, clicks: u32, last_clicked_by: String }
///
/// impl RenderState for Counter {
///     const FORM_NAME: &'static str = "counter";
///     fn render_state(&self, state: &mut FormState) {
///         state.key("id", &self.id);
///         state.input("label", &self.label);
///         // The counter widget shows two values the user cannot edit:
///         state.context("clicks", &self.clicks);
///         state.context("last_clicked_by", &self.last_clicked_by);
///     }
/// }
///
/// let state = FormState::of(&Counter { id: 1, label: "hi".into(), clicks: 3, last_clicked_by: "ann".into() });
/// assert_eq!(state.input_named("label").unwrap().value(), "hi");
/// ```
pub trait RenderState {
    /// The form's name; a token issued for one form is refused by another.
    const FORM_NAME: &'static str;

    /// Whether the form edits one thing only (site settings) and so writes
    /// no key entry (default `false`).
    ///
    /// A form's key entries ([`FormState::key`]) bind its tokens to one
    /// record: without them a token fits any record that shows the same
    /// values, and every record shares one lock. The derive refuses a form
    /// without a `#[render_state(key)]` field unless it says
    /// `#[render_state(singleton)]`, which sets this. A hand-written impl
    /// that writes no key and leaves this `false` is not refused (its
    /// entries are known only at run time): the guard logs an error when
    /// it renders such a form.
    const SINGLETON: bool = false;

    /// Writes the form's entries, in a fixed order, into `state`.
    fn render_state(&self, state: &mut FormState);
}

#[derive(Debug, Clone)]
struct Slot {
    kind: EntryKind,
    control: Control,
    name: Range<usize>,
    value: Range<usize>,
    /// Where its label is in `FormState::labels`, if it has one.
    label: Option<Range<usize>>,
}

/// The rendered entries of one form, in order, already in canonical encoding.
///
/// Made by [`FormState::of`] from a [`RenderState`], or filled by hand with
/// [`input`](FormState::input), [`context`](FormState::context) and
/// [`key`](FormState::key). Each entry is encoded as a tag byte for its
/// kind, then its name and its value, each after its byte length: no two
/// different states encode alike. The keyed digests a token carries are
/// taken of these bytes; the encoding is pinned by test vectors, so tokens
/// stay valid across releases.
#[derive(Clone, Default)]
pub struct FormState {
    /// `'F'` then every input and context entry, encoded.
    state: Vec<u8>,
    /// `'R'` then every key entry, encoded (inline while short: a key is an
    /// id or two).
    resource: SmallVec<[u8; 64]>,
    /// `'X'` then every context entry, encoded (a copy of those in `state`;
    /// inline while short).
    context: SmallVec<[u8; 64]>,
    slots: Vec<Slot>,
    /// The entries' labels, one after another (metadata: no part of any
    /// digest).
    labels: String,
}

impl FormState {
    /// An empty state.
    pub fn new() -> FormState {
        // Room for a typical form up front: one allocation per buffer
        // instead of a chain of reallocations as entries are added.
        let mut state = Vec::with_capacity(256);
        state.push(b'F');
        FormState {
            state,
            resource: SmallVec::from_slice(b"R"),
            context: SmallVec::from_slice(b"X"),
            slots: Vec::with_capacity(8),
            labels: String::new(),
        }
    }

    /// The state `form` renders now.
    pub fn of<T: RenderState + ?Sized>(form: &T) -> FormState {
        let mut state = FormState::new();
        form.render_state(&mut state);
        state
    }

    /// Adds an input (an editable field) named as the form field is named.
    pub fn input<V: RenderValue + ?Sized>(&mut self, name: &str, value: &V) -> &mut Self {
        self.push(EntryKind::Input, name, value)
    }

    /// Adds an input rendered as `control` (a checkbox rendered through a
    /// function of your own, a radio group); [`input`](FormState::input)
    /// takes the control from the value's type ([`Control::Checkbox`] for
    /// `bool`, else [`Control::Text`]).
    pub fn input_as<V: RenderValue + ?Sized>(
        &mut self,
        control: Control,
        name: &str,
        value: &V,
    ) -> &mut Self {
        self.push_as(EntryKind::Input, Some(control), name, value)
    }

    /// Adds a context value: shown, not editable, still checked.
    pub fn context<V: RenderValue + ?Sized>(&mut self, name: &str, value: &V) -> &mut Self {
        self.push(EntryKind::Context, name, value)
    }

    /// Adds a part of the resource's identity.
    pub fn key<V: RenderValue + ?Sized>(&mut self, name: &str, value: &V) -> &mut Self {
        self.push(EntryKind::Key, name, value)
    }

    /// Adds an entry of `kind`.
    pub fn push<V: RenderValue + ?Sized>(
        &mut self,
        kind: EntryKind,
        name: &str,
        value: &V,
    ) -> &mut Self {
        self.push_as(kind, None, name, value)
    }

    fn push_as<V: RenderValue + ?Sized>(
        &mut self,
        kind: EntryKind,
        control: Option<Control>,
        name: &str,
        value: &V,
    ) -> &mut Self {
        if self.state.is_empty() {
            // A `Default` state: lay the domain bytes first.
            self.state.push(b'F');
            self.resource.push(b'R');
            self.context.push(b'X');
        }
        // Every entry is encoded at the end of `state`; a key's is then
        // moved to `resource`.
        let start = self.state.len();
        let (name_range, value_range) = encode_entry(&mut self.state, kind, name, |buf| {
            value.render_value(&mut Rendered::new(buf))
        });
        let value_end = value_range.end;
        let (mut name, mut value_range) = (name_range, value_range);
        match kind {
            EntryKind::Key => {
                let to = self.resource.len();
                self.resource
                    .extend_from_slice(&self.state[start..value_end]);
                self.state.truncate(start);
                let moved = |r: Range<usize>| r.start - start + to..r.end - start + to;
                (name, value_range) = (moved(name), moved(value_range));
            }
            EntryKind::Context => self
                .context
                .extend_from_slice(&self.state[start..value_end]),
            EntryKind::Input => {}
        }
        self.slots.push(Slot {
            kind,
            control: match control {
                Some(control) => control,
                None if value.omitted_when_empty() => Control::Checkbox,
                None => Control::Text,
            },
            name,
            value: value_range,
            label: None,
        });
        self
    }

    /// Gives the entry added last a label: the words a person reads for the
    /// field ("First name" for `first_name`). A conflict names the field by
    /// its `<label>` on the page, else by this label, else by its name
    /// ([`Conflict::label`](crate::Conflict::label)). A label is no part of
    /// the fingerprint or the token: adding or changing one changes neither.
    /// Does nothing on an empty state. E.g. `state.input("first_name",
    /// &self.first_name).label("First name")`.
    pub fn label(&mut self, label: &str) -> &mut Self {
        if let Some(slot) = self.slots.last_mut() {
            let start = self.labels.len();
            self.labels.push_str(label);
            slot.label = Some(start..self.labels.len());
        }
        self
    }

    /// Every entry, in the order they were added.
    pub fn entries(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        self.slots.iter().map(|slot| self.entry(slot))
    }

    /// The inputs, in order.
    pub fn inputs(&self) -> impl Iterator<Item = Entry<'_>> + '_ {
        self.entries().filter(|e| e.kind() == EntryKind::Input)
    }

    /// The first input named `name`.
    pub fn input_named(&self, name: &str) -> Option<Entry<'_>> {
        self.inputs().find(|e| e.name() == name)
    }

    /// How many inputs there are.
    pub fn input_count(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.kind == EntryKind::Input)
            .count()
    }

    fn entry<'a>(&'a self, slot: &'a Slot) -> Entry<'a> {
        let buf: &[u8] = match slot.kind {
            EntryKind::Key => &self.resource,
            _ => &self.state,
        };
        Entry {
            buf,
            slot,
            labels: &self.labels,
        }
    }

    /// The canonical encoding of the inputs and context values.
    pub(crate) fn state_bytes(&self) -> &[u8] {
        if self.state.is_empty() {
            b"F"
        } else {
            &self.state
        }
    }

    /// The canonical encoding of the key entries.
    pub(crate) fn resource_bytes(&self) -> &[u8] {
        if self.resource.is_empty() {
            b"R"
        } else {
            &self.resource
        }
    }

    /// The canonical encoding of the context entries.
    pub(crate) fn context_bytes(&self) -> &[u8] {
        if self.context.is_empty() {
            b"X"
        } else {
            &self.context
        }
    }
}

impl fmt::Debug for FormState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.entries()).finish()
    }
}

/// One entry of a [`FormState`].
#[derive(Clone, Copy)]
pub struct Entry<'a> {
    buf: &'a [u8],
    slot: &'a Slot,
    labels: &'a str,
}

impl<'a> Entry<'a> {
    /// What the entry is.
    pub fn kind(&self) -> EntryKind {
        self.slot.kind
    }

    /// The form field's name.
    pub fn name(&self) -> &'a str {
        std::str::from_utf8(&self.buf[self.slot.name.clone()]).unwrap_or_default()
    }

    /// Whether a browser omits the field from a submission when it is empty
    /// (a checkbox or radio group, see [`Control::absent_when_empty`]).
    pub fn omitted_when_empty(&self) -> bool {
        self.slot.control.absent_when_empty()
    }

    /// The control the input is rendered as.
    pub fn control(&self) -> Control {
        self.slot.control
    }

    /// The label given with [`FormState::label`] (or the derive's
    /// `label = "…"`), if any.
    pub fn label(&self) -> Option<&'a str> {
        self.slot
            .label
            .clone()
            .and_then(|range| self.labels.get(range))
    }

    /// The value as rendered.
    pub fn value(&self) -> &'a str {
        // Only `&str` is ever written into a value, so this never fails.
        std::str::from_utf8(&self.buf[self.slot.value.clone()]).unwrap_or_default()
    }
}

impl fmt::Debug for Entry<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?} = {:?}",
            self.kind(),
            self.name(),
            self.value()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_a_form_shows_them() {
        let mut s = FormState::new();
        s.input("a", &42u8)
            .input("b", &-3i64)
            .input("c", &1.5f64)
            .input("d", &true)
            .input("e", &false)
            .input("f", &None::<i32>)
            .input("g", &Some("x"))
            .input("h", &'é')
            .input("i", "text");
        let values: Vec<_> = s.inputs().map(|e| (e.name(), e.value())).collect();
        assert_eq!(
            values,
            vec![
                ("a", "42"),
                ("b", "-3"),
                ("c", "1.5"),
                ("d", "on"),
                ("e", ""),
                ("f", ""),
                ("g", "x"),
                ("h", "é"),
                ("i", "text"),
            ]
        );
    }

    #[test]
    fn kinds_go_to_their_buffers() {
        let mut s = FormState::new();
        s.key("id", &7).input("name", "n").context("stock", &3);
        assert_eq!(s.input_count(), 1);
        assert_eq!(
            s.entries().map(|e| e.kind()).collect::<Vec<_>>(),
            vec![EntryKind::Key, EntryKind::Input, EntryKind::Context]
        );
        assert_eq!(s.resource_bytes()[0], b'R');
        assert_eq!(s.resource_bytes()[1], b'K');
        assert!(s.state_bytes().starts_with(b"FI"));
    }

    /// An entry as the canonical encoding writes it.
    fn encoded(tag: u8, name: &str, value: &str) -> Vec<u8> {
        let mut out = vec![tag];
        out.extend_from_slice(&(name.len() as u64).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value.as_bytes());
        out
    }

    #[test]
    fn keys_anywhere_and_long_ones_encode_and_read_back() {
        // Keys between inputs, and keys and context values longer than
        // the inline room of their buffers.
        let long = "k".repeat(100);
        let mut s = FormState::new();
        s.input("a", "1")
            .key("id", &7)
            .context("c", &long)
            .input("b", "2")
            .key("tenant", &long)
            .context("d", "x");
        let all: Vec<_> = s
            .entries()
            .map(|e| (e.kind(), e.name().to_owned(), e.value().to_owned()))
            .collect();
        let expected = [
            (EntryKind::Input, "a", "1"),
            (EntryKind::Key, "id", "7"),
            (EntryKind::Context, "c", long.as_str()),
            (EntryKind::Input, "b", "2"),
            (EntryKind::Key, "tenant", long.as_str()),
            (EntryKind::Context, "d", "x"),
        ]
        .map(|(k, n, v)| (k, n.to_owned(), v.to_owned()));
        assert_eq!(all, expected);
        let cat = |parts: &[Vec<u8>]| parts.concat();
        assert_eq!(
            s.state_bytes(),
            cat(&[
                b"F".to_vec(),
                encoded(b'I', "a", "1"),
                encoded(b'C', "c", &long),
                encoded(b'I', "b", "2"),
                encoded(b'C', "d", "x"),
            ])
        );
        assert_eq!(
            s.resource_bytes(),
            cat(&[
                b"R".to_vec(),
                encoded(b'K', "id", "7"),
                encoded(b'K', "tenant", &long),
            ])
        );
        assert_eq!(
            s.context_bytes(),
            cat(&[
                b"X".to_vec(),
                encoded(b'C', "c", &long),
                encoded(b'C', "d", "x"),
            ])
        );
    }

    #[test]
    fn default_state_equals_new_state() {
        let mut a = FormState::default();
        a.input("x", "1");
        let mut b = FormState::new();
        b.input("x", "1");
        assert_eq!(a.state_bytes(), b.state_bytes());
        assert_eq!(a.resource_bytes(), b.resource_bytes());
    }
}
