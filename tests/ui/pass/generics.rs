use std::fmt::Debug;

use concurrency_guard::{FormState, RenderState, RenderValue};

#[derive(RenderState)]
struct Labelled<'a, T, U: Debug, const N: usize>
where
    T: Clone,
{
    #[render_state(key)]
    id: T,
    label: &'a str,
    values: Option<T>,
    #[render_state(with = debug)]
    extra: U,
    #[render_state(with = len)]
    slots: [u8; N],
    #[render_state(skip)]
    cache: Vec<U>,
}

fn debug<U: Debug>(v: &U) -> String {
    format!("{v:?}")
}

fn len<const N: usize>(_: &[u8; N]) -> usize {
    N
}

/// `U` is only rendered through `with` or skipped, so it needs no `RenderValue`.
#[derive(Debug)]
struct Debugged;

fn needs_render_state<F: RenderState>(form: &F) -> FormState {
    FormState::of(form)
}

fn generic_use<T: Clone + RenderValue>(id: T) -> FormState {
    let form = Labelled::<T, Debugged, 2> {
        id,
        label: "x",
        values: None,
        extra: Debugged,
        slots: [0; 2],
        cache: Vec::new(),
    };
    let _ = &form.cache;
    needs_render_state(&form)
}

fn main() {
    assert_eq!(generic_use(5u8).entries().count(), 5);
}
