//! Template engines: the token rendered by a real template of each engine,
//! under its default HTML escaping, with auto-embed off. Each engine's tests
//! compile only with its feature (`cargo test --all-features` runs them all).

#[cfg(any(
    feature = "askama",
    feature = "askama-0-15",
    feature = "askama-0-14",
    feature = "minijinja",
    feature = "maud"
))]
mod through_the_guard {
    use axum::Router;
    use axum::response::Html;
    use axum::routing::get;
    use concurrency_guard::{ConcurrencyToken, Guarded};
    use http::StatusCode;

    use crate::common::*;

    /// The edit page of a template-mode app, rendered by `render`; the
    /// page must carry exactly one unescaped hidden input, and its token
    /// must save.
    pub async fn renders_one_usable_token(render: fn(&ItemForm, ConcurrencyToken) -> String) {
        let state = AppState::new();
        // A value the engine must escape: escaping is on.
        state.update(1, |item| item.name = "Lamp & shade".into());
        let layer = guard(&state).with_auto_embed(false);
        let app: Router = Router::new()
            .route(
                "/items/{id}",
                get(
                    move |Guarded(item): Guarded<ItemForm>, token: ConcurrencyToken| async move {
                        Html(render(&item, token))
                    },
                )
                .post(save),
            )
            .route_layer(layer)
            .with_state(state.clone());

        let page = get_page(&app, "/items/1").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let hidden = r#"<input type="hidden" name="_concurrency_token" value=""#;
        assert_eq!(page.body.matches(hidden).count(), 1, "{}", page.body);
        assert!(!page.body.contains("&lt;input"), "escaped: {}", page.body);
        assert!(
            !page.body.contains("Lamp & shade"),
            "not escaped: {}",
            page.body
        );
        assert!(page.body.contains("Lamp &"), "{}", page.body);

        let token = page.token();
        post_item(&app, "/items/1", &token, "Desk lamp", 100)
            .await
            .assert(StatusCode::OK, "saved item 1");
        assert_eq!(state.item(1).unwrap().name, "Desk lamp");
    }
}

#[cfg(feature = "askama")]
mod askama_engine {
    use askama::Template;
    use concurrency_guard::ConcurrencyToken;

    use super::through_the_guard::renders_one_usable_token;
    use crate::common::ItemForm;

    // `.html`: askama escapes for HTML by default.
    #[derive(Template)]
    #[template(
        ext = "html",
        source = r#"<form method="post">{{ token }}<input name="name" value="{{ name }}"><input name="price" value="{{ price }}"></form>"#
    )]
    struct Edit<'a> {
        token: ConcurrencyToken,
        name: &'a str,
        price: i64,
    }

    fn render(item: &ItemForm, token: ConcurrencyToken) -> String {
        Edit {
            token,
            name: &item.name,
            price: item.price,
        }
        .render()
        .unwrap()
    }

    #[tokio::test]
    async fn askama_renders_the_token_as_html() {
        renders_one_usable_token(render).await;
    }
}

/// An app on an older askama: a template derived by that askama (the
/// crate renamed in the app's Cargo.toml, named by `askama = …`) consults
/// that version's `HtmlSafe`, which the version's feature implements.
macro_rules! older_askama {
    ($module:ident, $feature:literal, $krate:ident) => {
        #[cfg(feature = $feature)]
        mod $module {
            use concurrency_guard::ConcurrencyToken;
            use $krate::Template;

            use super::through_the_guard::renders_one_usable_token;
            use crate::common::ItemForm;

            #[derive(Template)]
            #[template(
                ext = "html",
                askama = $krate,
                source = r#"<form method="post">{{ token }}<input name="name" value="{{ name }}"><input name="price" value="{{ price }}"></form>"#
            )]
            struct Edit<'a> {
                token: ConcurrencyToken,
                name: &'a str,
                price: i64,
            }

            fn render(item: &ItemForm, token: ConcurrencyToken) -> String {
                Edit {
                    token,
                    name: &item.name,
                    price: item.price,
                }
                .render()
                .unwrap()
            }

            #[tokio::test]
            async fn its_askama_renders_the_token_as_html() {
                renders_one_usable_token(render).await;
            }
        }
    };
}

older_askama!(askama_0_15, "askama-0-15", askama_015);
older_askama!(askama_0_14, "askama-0-14", askama_014);

#[cfg(feature = "minijinja")]
mod minijinja_engine {
    use concurrency_guard::ConcurrencyToken;
    use minijinja::value::Value;
    use minijinja::{Environment, context};

    use super::through_the_guard::renders_one_usable_token;
    use crate::common::ItemForm;

    const EDIT: &str = r#"<form method="post">{{ token }}<input name="name" value="{{ name }}"><input name="price" value="{{ price }}"></form>"#;

    /// Renders `edit.html` (auto-escaped for its extension, minijinja's default).
    fn render_with(token: Value, item: &ItemForm) -> String {
        let mut env = Environment::new();
        env.add_template("edit.html", EDIT).unwrap();
        let ctx = context! { token, name => &item.name, price => item.price };
        env.get_template("edit.html").unwrap().render(ctx).unwrap()
    }

    /// `context! { token }` takes the token as it is.
    #[tokio::test]
    async fn minijinja_renders_the_token_as_html() {
        renders_one_usable_token(|item, token| render_with(token.into(), item)).await;
    }

    /// The token serialized by minijinja's serde (as in a serialized struct).
    #[tokio::test]
    async fn minijinja_renders_a_serialized_token_as_html() {
        renders_one_usable_token(|item, token| render_with(Value::from_serialize(&token), item))
            .await;
    }

    #[test]
    fn a_token_inside_a_serialized_struct_renders_as_html() {
        #[derive(serde::Serialize)]
        struct Page {
            token: ConcurrencyToken,
        }
        let keys = crate::common::keys();
        let form = ItemForm {
            id: 1,
            name: "x".into(),
            price: 1,
            views: 0,
            stock: 0,
        };
        let token = ConcurrencyToken::issue(&keys, &form);
        let mut env = Environment::new();
        env.add_template("page.html", "{{ page.token }}|{{ '<' }}")
            .unwrap();
        let html = env
            .get_template("page.html")
            .unwrap()
            .render(context! { page => Value::from_serialize(Page { token: token.clone() }) })
            .unwrap();
        assert_eq!(html, format!("{}|&lt;", token.hidden_input()));
        // Outside minijinja, the token serializes to its value.
        assert_eq!(
            serde_json::to_value(Page {
                token: token.clone()
            })
            .unwrap()["token"],
            token.value()
        );
    }
}

#[cfg(feature = "maud")]
mod maud_engine {
    use concurrency_guard::ConcurrencyToken;
    use maud::html;

    use super::through_the_guard::renders_one_usable_token;
    use crate::common::ItemForm;

    fn render(item: &ItemForm, token: ConcurrencyToken) -> String {
        html! {
            form method="post" {
                (token)
                input name="name" value=(item.name);
                input name="price" value=(item.price);
            }
        }
        .into_string()
    }

    #[tokio::test]
    async fn maud_renders_the_token_as_html() {
        renders_one_usable_token(render).await;
    }
}
