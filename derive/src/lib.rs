//! `#[derive(RenderState)]` for the `concurrency-guard` crate.
//!
//! Use it through the main crate (`concurrency_guard::RenderState`, feature
//! `derive`, on by default); the generated code names `::concurrency_guard`.

mod attr;
mod expand;

use proc_macro::TokenStream;

/// Implements `concurrency_guard::RenderState` for a struct with named fields.
///
/// Each field writes one entry into the form state, in declaration order:
/// an input named after the field, unless its options say otherwise. All
/// options live under `#[render_state(...)]`; several may be written in one
/// attribute (`#[render_state(context, rename = "qty")]`) or spread over
/// several.
///
/// On a field:
///
/// | option | effect |
/// |---|---|
/// | *(none)* | `state.input("field", &self.field)` |
/// | `skip` | no entry: the field takes no part |
/// | `context` | `state.context(..)`: shown, not editable, still checked |
/// | `key` | `state.key(..)`: the record's identity; several make a composite key |
/// | `rename = "name"` | the entry's name instead of the field's (default: the field's name without `r#`) |
/// | `with = path` | the value is `path(&self.field)`, with `path: fn(&FieldType) -> impl RenderValue` |
///
/// `skip` goes alone; `key` and `context` exclude each other; `rename` and
/// `with` combine with either.
///
/// On the struct, `#[render_state(form = "name")]` sets `FORM_NAME`
/// (default: the struct's name), and `#[render_state(singleton)]` says the
/// form edits one thing only (site settings) and so has no key. A struct
/// needs one of a `key` field or `singleton`: without a key, a token would
/// fit any record showing the same values (a compile error says so).
///
/// A model of another crate (an ORM's generated `entity::post::Model`)
/// cannot implement `RenderState` in your crate (the orphan rule), and its
/// file is the generator's. Wrap it in a newtype and list, on its one field,
/// the model's fields that take part, each with the options above in
/// parentheses; the fields are read through `self.0`, nothing is copied:
///
/// ```ignore
/// #[derive(Clone, RenderState)]
/// #[render_state(form = "post")]
/// struct PostForm(
///     #[render_state(fields(id(key), title, body, views(context)))]
///     entity::post::Model,
/// );
/// ```
///
/// Fields not listed take no part (as if `skip`). The newtype is a local
/// type, so it can also be the guard's loader (`impl FromRequestParts<AppState>
/// for PostForm`).
///
/// Generic structs keep their generics; every field whose type mentions a
/// type parameter (and has no `with`) gets a `FieldType: RenderValue` bound.
///
/// ```ignore
/// use concurrency_guard::RenderState;
///
/// #[derive(RenderState)]
/// #[render_state(form = "item")]
/// struct ItemForm {
///     #[render_state(key)]
///     id: i64,
///     name: String,
///     #[render_state(with = two_decimals, rename = "unit_price")]
///     price: f64,
///     #[render_state(context)]
///     stock: i64,
///     #[render_state(skip)]
///     views: u64,
/// }
///
/// fn two_decimals(v: &f64) -> String { format!("{v:.2}") }
/// ```
#[proc_macro_derive(RenderState, attributes(render_state))]
pub fn derive_render_state(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::render_state(input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
