//! The `#[render_state(...)]` options: parsed, placed, checked.
//!
//! Grammar (one or more attributes, options separated by commas):
//!
//! ```text
//! field option  := skip | key | context | rename = "name" | with = path
//!                | checkbox | radio | label = "words"
//! struct option := form = "name" | singleton
//! ```
//!
//! Parsing never stops at the first mistake: every error is collected in
//! [`Errors`] and reported together, each at the span of the tokens at fault.

use proc_macro2::{Span, TokenTree};
use quote::ToTokens;
use syn::parse::ParseStream;
use syn::{Attribute, Expr, ExprLit, ExprPath, Ident, Lit, LitStr, Meta, Token};

/// The keywords of `#[render_state(...)]`.
mod kw {
    syn::custom_keyword!(skip);
    syn::custom_keyword!(key);
    syn::custom_keyword!(context);
    syn::custom_keyword!(rename);
    syn::custom_keyword!(with);
    syn::custom_keyword!(form);
    syn::custom_keyword!(checkbox);
    syn::custom_keyword!(radio);
    syn::custom_keyword!(singleton);
    syn::custom_keyword!(fields);
    syn::custom_keyword!(label);
}

/// The attribute's name.
const ATTR: &str = "render_state";

/// What can be written inside `#[render_state(...)]`, for the error that lists it.
const VALID_OPTIONS: &str = "on a field, write one of `skip`, `key`, `context`, \
     `rename = \"...\"`, `with = path`, `checkbox`, `radio`, `label = \"...\"` (on the one field of a newtype \
     wrapping a model: `fields(id(key), title)`); on the struct, write `form = \"...\"` or `singleton`";

/// Errors collected while reading a derive input, reported together.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds an error at the span of `tokens`.
    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// Adds `error`.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Whether nothing was reported yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// `Err` with every error collected, if there was any.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(errors) => Err(errors),
            None => Ok(()),
        }
    }
}

/// One option, as written.
enum Opt {
    Skip(kw::skip),
    Key(kw::key),
    Context(kw::context),
    /// The value is `None` when it was not a usable string (already reported).
    Rename(kw::rename, Option<LitStr>),
    /// The path is `None` when it was not a path (already reported).
    With(kw::with, Option<ExprPath>),
    Form(kw::form, Option<LitStr>),
    Checkbox(kw::checkbox),
    Radio(kw::radio),
    Singleton(kw::singleton),
    /// `fields(name, name(options), ...)` on a newtype's one field: the
    /// wrapped model's fields that take part, each with its own options.
    Fields(kw::fields, Vec<(Ident, Vec<Opt>)>),
    /// The value is `None` when it was not a usable string (already reported).
    Label(kw::label, Option<LitStr>),
}

impl Opt {
    /// The option's keyword, as the user writes it.
    fn name(&self) -> &'static str {
        match self {
            Opt::Skip(_) => "skip",
            Opt::Key(_) => "key",
            Opt::Context(_) => "context",
            Opt::Rename(..) => "rename",
            Opt::With(..) => "with",
            Opt::Form(..) => "form",
            Opt::Checkbox(_) => "checkbox",
            Opt::Radio(_) => "radio",
            Opt::Singleton(_) => "singleton",
            Opt::Fields(..) => "fields",
            Opt::Label(..) => "label",
        }
    }

    /// The keyword's span.
    fn span(&self) -> Span {
        match self {
            Opt::Skip(k) => k.span,
            Opt::Key(k) => k.span,
            Opt::Context(k) => k.span,
            Opt::Rename(k, _) => k.span,
            Opt::With(k, _) => k.span,
            Opt::Form(k, _) => k.span,
            Opt::Checkbox(k) => k.span,
            Opt::Radio(k) => k.span,
            Opt::Singleton(k) => k.span,
            Opt::Fields(k, _) => k.span,
            Opt::Label(k, _) => k.span,
        }
    }

    /// How the option is written, for messages.
    fn example(&self) -> &'static str {
        match self {
            Opt::Skip(_) => "#[render_state(skip)]",
            Opt::Key(_) => "#[render_state(key)]",
            Opt::Context(_) => "#[render_state(context)]",
            Opt::Rename(..) => "#[render_state(rename = \"form_field\")]",
            Opt::With(..) => "#[render_state(with = path::to::function)]",
            Opt::Form(..) => "#[render_state(form = \"form_name\")]",
            Opt::Checkbox(_) => "#[render_state(checkbox)]",
            Opt::Radio(_) => "#[render_state(radio)]",
            Opt::Singleton(_) => "#[render_state(singleton)]",
            Opt::Fields(..) => "#[render_state(fields(id(key), title, body))]",
            Opt::Label(..) => "#[render_state(label = \"First name\")]",
        }
    }
}

/// Reads every option of every `#[render_state(...)]` in `attrs`, in order.
fn parse_options(attrs: &[Attribute], errors: &mut Errors) -> Vec<Opt> {
    let mut opts = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident(ATTR)) {
        let list = match &attr.meta {
            Meta::List(list) => list,
            Meta::Path(_) | Meta::NameValue(_) => {
                errors.at(
                    attr,
                    format!(
                        "`#[{ATTR}]` takes its options in parentheses: \
                         write `#[{ATTR}(skip)]`, `#[{ATTR}(rename = \"name\")]`, ... ({VALID_OPTIONS})"
                    ),
                );
                continue;
            }
        };
        match list.parse_args_with(|input: ParseStream<'_>| parse_option_list(input, errors)) {
            Ok(found) => opts.extend(found),
            Err(e) => errors.push(e),
        }
    }
    opts
}

/// Reads options separated by commas, up to the end of `input`.
fn parse_option_list(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Vec<Opt>> {
    let mut found = Vec::new();
    while !input.is_empty() {
        if let Some(opt) = parse_option(input, errors)? {
            found.push(opt);
        }
        if input.is_empty() {
            break;
        }
        if !input.peek(Token![,]) {
            let stray: TokenTree = input.parse()?;
            errors.at(
                &stray,
                format!(
                    "options are separated by commas: write \
                     `#[{ATTR}(key, rename = \"id\")]` ({VALID_OPTIONS})"
                ),
            );
            skip_to_comma(input)?;
            if input.is_empty() {
                break;
            }
        }
        input.parse::<Token![,]>()?;
    }
    Ok(found)
}

/// Reads one option; `None` when it was unknown or malformed (already reported,
/// and skipped up to the next comma).
fn parse_option(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<Option<Opt>> {
    let opt = if input.peek(kw::skip) {
        Opt::Skip(input.parse()?)
    } else if input.peek(kw::key) {
        Opt::Key(input.parse()?)
    } else if input.peek(kw::context) {
        Opt::Context(input.parse()?)
    } else if input.peek(kw::checkbox) {
        Opt::Checkbox(input.parse()?)
    } else if input.peek(kw::radio) {
        Opt::Radio(input.parse()?)
    } else if input.peek(kw::singleton) {
        Opt::Singleton(input.parse()?)
    } else if input.peek(kw::rename) {
        let kw: kw::rename = input.parse()?;
        let value = parse_name(input, &kw, "rename", "form_field", errors)?;
        Opt::Rename(kw, value)
    } else if input.peek(kw::form) {
        let kw: kw::form = input.parse()?;
        let value = parse_name(input, &kw, "form", "form_name", errors)?;
        Opt::Form(kw, value)
    } else if input.peek(kw::label) {
        let kw: kw::label = input.parse()?;
        let value = parse_name(input, &kw, "label", "First name", errors)?;
        Opt::Label(kw, value)
    } else if input.peek(kw::fields) {
        let kw: kw::fields = input.parse()?;
        let list = parse_fields(input, &kw, errors)?;
        Opt::Fields(kw, list)
    } else if input.peek(kw::with) {
        let kw: kw::with = input.parse()?;
        let path = parse_with(input, &kw, errors)?;
        Opt::With(kw, path)
    } else {
        let unknown: TokenTree = input.parse()?;
        errors.at(
            &unknown,
            format!("unknown option `{unknown}` in `#[{ATTR}(...)]`: {VALID_OPTIONS}"),
        );
        skip_to_comma(input)?;
        return Ok(None);
    };
    if matches!(
        opt,
        Opt::Skip(_)
            | Opt::Key(_)
            | Opt::Context(_)
            | Opt::Checkbox(_)
            | Opt::Radio(_)
            | Opt::Singleton(_)
    ) && !input.is_empty()
        && !input.peek(Token![,])
    {
        let value: TokenTree = input.parse()?;
        errors.at(
            &value,
            format!("`{}` takes no value: write `{}`", opt.name(), opt.example()),
        );
        skip_to_comma(input)?;
        return Ok(None);
    }
    Ok(Some(opt))
}

/// Reads `(name, name(options), ...)` after `fields`.
fn parse_fields(
    input: ParseStream<'_>,
    kw: &kw::fields,
    errors: &mut Errors,
) -> syn::Result<Vec<(Ident, Vec<Opt>)>> {
    const HINT: &str = "write `fields(id(key), title, body)`: the wrapped model's fields \
         that take part, each followed by its options in parentheses if it has any";
    if !input.peek(syn::token::Paren) {
        errors.at(kw, format!("`fields` needs a list: {HINT}"));
        skip_to_comma(input)?;
        return Ok(Vec::new());
    }
    let content;
    syn::parenthesized!(content in input);
    let mut list = Vec::new();
    while !content.is_empty() {
        let name: Ident = content.parse()?;
        let opts = if content.peek(syn::token::Paren) {
            let inner;
            syn::parenthesized!(inner in content);
            parse_option_list(&inner, errors)?
        } else {
            Vec::new()
        };
        list.push((name, opts));
        if content.is_empty() {
            break;
        }
        if !content.peek(Token![,]) {
            let stray: TokenTree = content.parse()?;
            errors.at(&stray, format!("fields are separated by commas: {HINT}"));
            skip_to_comma(&content)?;
            if content.is_empty() {
                break;
            }
        }
        content.parse::<Token![,]>()?;
    }
    Ok(list)
}

/// Reads `= "name"` after `rename` or `form`.
fn parse_name(
    input: ParseStream<'_>,
    kw: &impl ToTokens,
    option: &str,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    if !input.peek(Token![=]) {
        errors.at(
            kw,
            format!("`{option}` needs a name: write `{option} = \"{example}\"`"),
        );
        skip_to_comma(input)?;
        return Ok(None);
    }
    input.parse::<Token![=]>()?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => {
            if lit.value().is_empty() {
                errors.at(
                    &lit,
                    format!(
                        "`{option}` needs a name that is not empty: write `{option} = \"{example}\"`"
                    ),
                );
                Ok(None)
            } else {
                Ok(Some(lit))
            }
        }
        other => {
            let suggestion = match &other {
                Expr::Path(p) if p.path.get_ident().is_some() => {
                    p.path.get_ident().map(ToString::to_string)
                }
                _ => None,
            }
            .unwrap_or_else(|| example.to_owned());
            errors.at(
                &other,
                format!("`{option}` takes a string literal: write `{option} = \"{suggestion}\"`"),
            );
            Ok(None)
        }
    }
}

/// Reads `= path` after `with`.
fn parse_with(
    input: ParseStream<'_>,
    kw: &kw::with,
    errors: &mut Errors,
) -> syn::Result<Option<ExprPath>> {
    const HINT: &str = "a function `fn(&FieldType) -> impl RenderValue`";
    if !input.peek(Token![=]) {
        errors.at(
            kw,
            format!("`with` needs a function: write `with = path::to::function`, {HINT}"),
        );
        skip_to_comma(input)?;
        return Ok(None);
    }
    input.parse::<Token![=]>()?;
    let value: Expr = input.parse()?;
    match value {
        Expr::Path(path) => Ok(Some(path)),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => {
            errors.at(
                &lit,
                format!(
                    "`with` takes a path, not a string: write `with = {}`, {HINT}",
                    lit.value()
                ),
            );
            Ok(None)
        }
        other => {
            errors.at(
                &other,
                format!("`with` takes a path: write `with = path::to::function`, {HINT}"),
            );
            Ok(None)
        }
    }
}

/// Skips the rest of a malformed option.
fn skip_to_comma(input: ParseStream<'_>) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// What a field contributes to the form state.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Input,
    Context,
    Key,
}

/// A field's options, checked.
pub(crate) struct FieldOptions {
    /// `None` when the field is skipped.
    pub(crate) role: Option<Role>,
    pub(crate) rename: Option<LitStr>,
    pub(crate) with: Option<ExprPath>,
    /// `label = "..."`: the words a person reads for the field.
    pub(crate) label: Option<LitStr>,
    /// `Checkbox` or `Radio`: the `Control` variant of an input.
    pub(crate) control: Option<&'static str>,
    /// `fields(...)`: where it was written, and each listed field of the
    /// wrapped model with its checked options.
    pub(crate) fields: Option<(Span, Vec<(Ident, FieldOptions)>)>,
}

/// Stores `opt` in `slot`, or reports it as a duplicate.
fn once(slot: &mut Option<Opt>, opt: Opt, errors: &mut Errors) {
    if slot.is_some() {
        errors.push(syn::Error::new(
            opt.span(),
            format!(
                "duplicate option `{}`: write it once, as `{}`",
                opt.name(),
                opt.example()
            ),
        ));
    } else {
        *slot = Some(opt);
    }
}

/// Reads and checks the options of one field.
pub(crate) fn field_options(attrs: &[Attribute], errors: &mut Errors) -> FieldOptions {
    let opts = parse_options(attrs, errors);
    check_field(opts, errors, true)
}

/// Checks the options of one field (`fields_allowed`: of a struct's field,
/// where `fields(...)` may go; not of an entry inside `fields(...)`).
fn check_field(opts: Vec<Opt>, errors: &mut Errors, fields_allowed: bool) -> FieldOptions {
    let mut skip = None;
    let mut key = None;
    let mut context = None;
    let mut rename = None;
    let mut with = None;
    let mut label = None;
    let mut control = None;
    let mut fields = None;
    // The second of `key` and `context`, whichever it is.
    let mut key_and_context = None;
    for opt in opts {
        if matches!(
            (&opt, &key, &context),
            (Opt::Key(_), None, Some(_)) | (Opt::Context(_), Some(_), None)
        ) {
            key_and_context = Some(opt.span());
        }
        match opt {
            Opt::Skip(_) => once(&mut skip, opt, errors),
            Opt::Key(_) => once(&mut key, opt, errors),
            Opt::Context(_) => once(&mut context, opt, errors),
            Opt::Rename(..) => once(&mut rename, opt, errors),
            Opt::With(..) => once(&mut with, opt, errors),
            Opt::Label(..) => once(&mut label, opt, errors),
            Opt::Checkbox(_) | Opt::Radio(_) => once(&mut control, opt, errors),
            Opt::Fields(..) if fields_allowed => once(&mut fields, opt, errors),
            Opt::Fields(..) => errors.push(syn::Error::new(
                opt.span(),
                "`fields` lists the fields of a newtype's model and cannot nest: \
                 inside `fields(...)`, give each field its own options, as in \
                 `fields(id(key), price(with = two_decimals))`",
            )),
            Opt::Form(..) => errors.push(syn::Error::new(
                opt.span(),
                "`form` names the whole form and goes on the struct: write \
                 `#[render_state(form = \"form_name\")]` above `struct`; to name \
                 this field's form field, write `rename = \"form_field\"`",
            )),
            Opt::Singleton(..) => errors.push(syn::Error::new(
                opt.span(),
                "`singleton` says the whole form edits one thing only and goes on the \
                 struct: write `#[render_state(singleton)]` above `struct`; to name the \
                 record this field identifies, write `#[render_state(key)]`",
            )),
        }
    }

    if skip.is_some() {
        for other in [&key, &context, &rename, &with, &label, &control, &fields]
            .into_iter()
            .flatten()
        {
            errors.push(syn::Error::new(
                other.span(),
                format!(
                    "`{0}` has no effect on a skipped field: `skip` leaves the field out \
                     of the form state; remove `skip` to keep the field, or remove `{0}`",
                    other.name()
                ),
            ));
        }
    }
    if let Some(later) = key_and_context {
        errors.push(syn::Error::new(
            later,
            "a field is either `key` or `context`, not both: write \
             `#[render_state(key)]` for the record's identity (an id), or \
             `#[render_state(context)]` for a value shown but not editable",
        ));
    }

    if let (Some(control), true) = (&control, key.is_some() || context.is_some()) {
        errors.push(syn::Error::new(
            control.span(),
            format!(
                "`{0}` says how an input is submitted, and a `key` or `context` field is \
                 not an input: remove `{0}`, or remove `key`/`context` to make the field \
                 an input",
                control.name()
            ),
        ));
    }

    let role = if skip.is_some() {
        None
    } else if key.is_some() {
        Some(Role::Key)
    } else if context.is_some() {
        Some(Role::Context)
    } else {
        Some(Role::Input)
    };
    FieldOptions {
        role,
        rename: match rename {
            Some(Opt::Rename(_, value)) => value,
            _ => None,
        },
        with: match with {
            Some(Opt::With(_, path)) => path,
            _ => None,
        },
        label: match label {
            Some(Opt::Label(_, value)) => value,
            _ => None,
        },
        control: match control {
            Some(Opt::Checkbox(_)) => Some("Checkbox"),
            Some(Opt::Radio(_)) => Some("Radio"),
            _ => None,
        },
        fields: match fields {
            Some(Opt::Fields(kw, list)) => Some((
                kw.span,
                list.into_iter()
                    .map(|(name, opts)| (name, check_field(opts, errors, false)))
                    .collect(),
            )),
            _ => None,
        },
    }
}

/// The options on the struct itself.
pub(crate) struct ContainerOptions {
    /// `form = "..."`.
    pub(crate) form: Option<LitStr>,
    /// Where `singleton` was written, if it was.
    pub(crate) singleton: Option<Span>,
}

/// Reads and checks the options on the struct itself: its form name, and
/// whether it is a singleton.
pub(crate) fn container_options(attrs: &[Attribute], errors: &mut Errors) -> ContainerOptions {
    let mut form = None;
    let mut singleton = None;
    for opt in parse_options(attrs, errors) {
        match opt {
            Opt::Form(..) => once(&mut form, opt, errors),
            Opt::Singleton(..) => once(&mut singleton, opt, errors),
            _ => errors.push(syn::Error::new(
                opt.span(),
                format!(
                    "`{}` is a field option: put `{}` on a field, not on the struct; \
                     on the struct, write `#[render_state(form = \"form_name\")]` \
                     or `#[render_state(singleton)]`",
                    opt.name(),
                    opt.example()
                ),
            )),
        }
    }
    ContainerOptions {
        form: match form {
            Some(Opt::Form(_, value)) => value,
            _ => None,
        },
        singleton: singleton.map(|opt| opt.span()),
    }
}
