//! A model of another crate, guarded through a newtype with no copy of its
//! fields: `fields(...)` lists the ones that take part.
use concurrency_guard::{EntryKind, FormState, RenderState};

mod entity {
    pub struct Model {
        pub id: i32,
        pub title: String,
        pub price: f64,
        pub views: i64,
        pub r#type: String,
        pub secret: String,
    }
}

#[derive(RenderState)]
#[render_state(form = "post")]
struct PostForm(
    #[render_state(fields(
        id(key),
        title,
        price(with = two_decimals, rename = "unit_price"),
        views(context),
        r#type,
    ))]
    entity::Model,
);

fn two_decimals(v: &f64) -> String {
    format!("{v:.2}")
}

fn main() {
    let form = PostForm(entity::Model {
        id: 7,
        title: "Hello".into(),
        price: 2.0,
        views: 3,
        r#type: "note".into(),
        secret: String::new(),
    });
    let _ = &form.0.secret;
    let state = FormState::of(&form);
    let entries: Vec<(EntryKind, &str, &str)> = state
        .entries()
        .map(|e| (e.kind(), e.name(), e.value()))
        .collect();
    assert_eq!(
        entries,
        [
            (EntryKind::Key, "id", "7"),
            (EntryKind::Input, "title", "Hello"),
            (EntryKind::Input, "unit_price", "2.00"),
            (EntryKind::Context, "views", "3"),
            (EntryKind::Input, "type", "note"),
        ]
    );
    assert_eq!(PostForm::FORM_NAME, "post");
}
