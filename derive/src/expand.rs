//! The `impl RenderState` a derive input expands to.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, WherePredicate};

use crate::attr::{self, Errors, Role};

/// Expands `#[derive(RenderState)]` on `input`.
pub(crate) fn render_state(input: DeriveInput) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    let mut errors = Errors::default();
    let fields: Vec<Field<'_>> = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => fields
                .named
                .iter()
                .filter_map(|field| {
                    let options = attr::field_options(&field.attrs, &mut errors);
                    if let Some((span, _)) = &options.fields {
                        errors.push(syn::Error::new(
                            *span,
                            format!(
                                "`fields(...)` lists the fields of a model this form wraps, and \
                                 goes on the one field of a newtype: write `struct {ident}(\
                                 #[render_state(fields(id(key), title))] Model);`; on a field \
                                 of `{ident}`, write the field's own options"
                            ),
                        ));
                    }
                    let name = field.ident.as_ref()?;
                    Some(Field {
                        access: quote!(#name),
                        name: name.unraw().to_string(),
                        span: name.span(),
                        ty: Some(&field.ty),
                        options,
                    })
                })
                .collect(),
            Fields::Unnamed(fields)
                if fields.unnamed.len() == 1
                    && fields.unnamed[0]
                        .attrs
                        .iter()
                        .any(|a| a.path().is_ident("render_state")) =>
            {
                let options = attr::field_options(&fields.unnamed[0].attrs, &mut errors);
                match options.fields {
                    Some((_, list)) if options.role.is_some() => list
                        .into_iter()
                        .map(|(name, options)| Field {
                            access: quote!(0.#name),
                            name: name.unraw().to_string(),
                            span: name.span(),
                            ty: None,
                            options,
                        })
                        .collect(),
                    Some(_) => Vec::new(),
                    None => {
                        errors.at(
                            &fields.unnamed[0],
                            format!(
                                "the one field of a newtype takes `fields(...)`, the wrapped \
                                 model's fields that take part: write `struct {ident}(\
                                 #[render_state(fields(id(key), title))] Model);`"
                            ),
                        );
                        Vec::new()
                    }
                }
            }
            Fields::Unnamed(fields) => {
                return Err(syn::Error::new_spanned(
                    fields,
                    format!(
                        "RenderState needs named fields, since each field's name is its form \
                         field's name: write `struct {ident} {{ name: Type, ... }}`; to guard a \
                         model of another crate, wrap it and list its fields: `struct \
                         {ident}(#[render_state(fields(id(key), title))] Model);`"
                    ),
                ));
            }
            Fields::Unit => {
                let struct_token = data.struct_token;
                return Err(syn::Error::new_spanned(
                    quote!(#struct_token #ident),
                    format!(
                        "RenderState needs named fields, one per form field, and `{ident}` has \
                         none: write `struct {ident} {{ name: Type, ... }}`, or implement \
                         RenderState by hand"
                    ),
                ));
            }
        },
        Data::Enum(data) => {
            let enum_token = data.enum_token;
            return Err(syn::Error::new_spanned(
                quote!(#enum_token #ident),
                format!(
                    "RenderState can be derived for structs with named fields; for an enum, \
                     implement RenderState by hand:\n\
                     \n\
                     impl RenderState for {ident} {{\n    \
                         const FORM_NAME: &'static str = \"{ident}\";\n    \
                         fn render_state(&self, state: &mut FormState) {{\n        \
                             match self {{\n            \
                                 {ident}::Variant {{ id, name }} => {{\n                \
                                     state.key(\"id\", id);\n                \
                                     state.input(\"name\", name);\n            \
                                 }}\n            \
                                 // one arm per variant\n        \
                             }}\n    \
                         }}\n\
                     }}"
                ),
            ));
        }
        Data::Union(data) => {
            let union_token = data.union_token;
            return Err(syn::Error::new_spanned(
                quote!(#union_token #ident),
                format!(
                    "RenderState can be derived for structs with named fields, not for a \
                     union: implement RenderState by hand, as in `impl RenderState for {ident} \
                     {{ const FORM_NAME: &'static str = \"{ident}\"; fn render_state(&self, \
                     state: &mut FormState) {{ state.input(\"name\", ...); }} }}`"
                ),
            ));
        }
    };

    let container = attr::container_options(&input.attrs, &mut errors);
    let form_name = container
        .form
        .map(|lit| lit.value())
        .unwrap_or_else(|| ident.unraw().to_string());
    let mut has_key = false;

    let type_params: HashSet<Ident> = input
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();
    // Hygienic: a user's function named `state` stays reachable from `with`.
    let state = Ident::new("state", Span::mixed_site());
    let mut entries = Vec::new();
    let mut bounds: Vec<WherePredicate> = Vec::new();
    let mut bounded = HashSet::new();

    for field in fields {
        let options = field.options;
        let Some(role) = options.role else { continue };
        has_key |= role == Role::Key;
        let access = &field.access;
        let name = options.rename.map(|lit| lit.value()).unwrap_or(field.name);
        let method = match role {
            Role::Input => format_ident!("input"),
            Role::Context => format_ident!("context"),
            Role::Key => format_ident!("key"),
        };
        let value = match (&options.with, field.ty) {
            (Some(path), _) => quote_spanned! {path.span()=> &#path(&self.#access) },
            (None, Some(ty)) => {
                if mentions(ty.to_token_stream(), &type_params)
                    && bounded.insert(ty.to_token_stream().to_string())
                {
                    bounds.push(syn::parse_quote_spanned! {ty.span()=>
                        #ty: ::concurrency_guard::RenderValue
                    });
                }
                quote_spanned! {ty.span()=> &self.#access }
            }
            (None, None) => quote_spanned! {field.span=> &self.#access },
        };
        let label = options.label.map(|lit| {
            quote! { ::concurrency_guard::FormState::label(#state, #lit); }
        });
        entries.push(match options.control {
            Some(control) if role == Role::Input => {
                let control = format_ident!("{control}");
                quote! {
                    ::concurrency_guard::FormState::input_as(
                        #state,
                        ::concurrency_guard::Control::#control,
                        #name,
                        #value,
                    );
                }
            }
            _ => quote! {
                ::concurrency_guard::FormState::#method(#state, #name, #value);
            },
        });
        entries.extend(label);
    }
    // A missing key is reported once the options read well: a misspelt
    // `#[render_state(kye)]` is the mistake to show, not the missing key.
    match (container.singleton, has_key) {
        (None, false) if errors.is_empty() => errors.at(
            ident,
            format!(
                "`{ident}` has no `#[render_state(key)]` field, so its tokens would bind no \
                 record: a token would fit any record that shows the same values, and all \
                 of them would share one lock. Mark the field that identifies the record \
                 with `#[render_state(key)]` (e.g. its `id`), or, if the form edits one \
                 thing only (site settings), write `#[render_state(singleton)]` above \
                 `struct {ident}`"
            ),
        ),
        (Some(span), true) => errors.push(syn::Error::new(
            span,
            "a singleton form edits one thing only and has no key: remove `singleton`, \
             or remove `#[render_state(key)]` from the field",
        )),
        _ => {}
    }
    errors.finish()?;
    let singleton = container.singleton.is_some().then(|| {
        quote! { const SINGLETON: bool = true; }
    });

    let mut generics = input.generics.clone();
    if !bounds.is_empty() {
        generics.make_where_clause().predicates.extend(bounds);
    }
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    let state_param = if entries.is_empty() {
        format_ident!("_state", span = Span::mixed_site())
    } else {
        state
    };

    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics ::concurrency_guard::RenderState for #ident #ty_generics #where_clause {
            const FORM_NAME: &'static str = #form_name;
            #singleton

            fn render_state(&self, #state_param: &mut ::concurrency_guard::FormState) {
                #(#entries)*
            }
        }
    })
}

/// One field that may take part: of the struct, or listed in a newtype's
/// `fields(...)`.
struct Field<'a> {
    /// After `self.`: `name`, or `0.name` through a newtype.
    access: TokenStream,
    /// The default entry name: the field's name without `r#`.
    name: String,
    span: Span,
    /// The field's type, when the struct declares it (not through a newtype).
    ty: Option<&'a syn::Type>,
    options: attr::FieldOptions,
}

/// Whether `tokens` (a type) names one of `params`.
fn mentions(tokens: TokenStream, params: &HashSet<Ident>) -> bool {
    let mut after_quote = false;
    for token in tokens {
        let found = match &token {
            // `'a` is a lifetime, not a type parameter named `a`.
            TokenTree::Ident(ident) => !after_quote && params.contains(ident),
            TokenTree::Group(group) => mentions(group.stream(), params),
            _ => false,
        };
        if found {
            return true;
        }
        after_quote = matches!(&token, TokenTree::Punct(p) if p.as_char() == '\'');
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use syn::Type;

    fn ty(text: &str) -> Type {
        syn::parse_str(text).unwrap()
    }

    fn params(names: &[&str]) -> HashSet<Ident> {
        names.iter().map(|n| format_ident!("{n}")).collect()
    }

    #[test]
    fn a_type_mentions_the_parameters_it_names() {
        let p = params(&["T", "a"]);
        assert!(mentions(ty("T").to_token_stream(), &p));
        assert!(mentions(ty("Option<Vec<T>>").to_token_stream(), &p));
        assert!(mentions(ty("[T; 3]").to_token_stream(), &p));
        assert!(mentions(ty("<T as Tr>::Out").to_token_stream(), &p));
        assert!(!mentions(ty("&'a str").to_token_stream(), &p));
        assert!(!mentions(ty("String").to_token_stream(), &p));
        assert!(!mentions(ty("[u8; N]").to_token_stream(), &p));
    }
}
