//! [`GuardedForm`]: what the guard needs of a form type to hand it to the
//! handler, said in one place so that a missing piece is a compile error
//! that names it.

/// A form type the guard can hand to the handler: `Clone` (the guard keeps
/// the value it loaded and gives the handler a copy as
/// [`Guarded<T>`](crate::Guarded)), `Send + Sync + 'static`.
///
/// Implemented for every such type; it cannot be implemented by hand
/// (sealed). It exists for its compile error: a form type without `Clone`
/// is named at `ConcurrencyGuardLayer::new` with what to add, instead of
/// deep inside axum's `Handler` bounds.
#[diagnostic::on_unimplemented(
    message = "`{Self}` must be `Clone + Send + Sync + 'static` to be guarded (the guard hands the loaded value to the handler)",
    label = "`{Self}` is not `Clone + Send + Sync + 'static`",
    note = "add `#[derive(Clone)]` to `{Self}`; a newtype wrapping a model of another crate needs the model to be `Clone` too"
)]
pub trait GuardedForm: Clone + Send + Sync + 'static + sealed::Sealed {}

impl<T: Clone + Send + Sync + 'static> GuardedForm for T {}

mod sealed {
    pub trait Sealed {}
    impl<T: Clone + Send + Sync + 'static> Sealed for T {}
}
