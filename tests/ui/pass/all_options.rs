use concurrency_guard::{EntryKind, FormState, RenderState};

#[derive(RenderState)]
struct ItemForm {
    #[render_state(key)]
    id: i64,
    name: String,
    #[render_state(with = two_decimals)]
    price: f64,
    #[render_state(skip)]
    views: u64,
    #[render_state(context)]
    stock: i64,
    #[render_state(rename = "in_stock")]
    available: bool,
}

fn two_decimals(v: &f64) -> String {
    format!("{v:.2}")
}

fn main() {
    let item = ItemForm {
        id: 1,
        name: "Lamp".into(),
        price: 2.0,
        views: 0,
        stock: 3,
        available: true,
    };
    let _ = item.views;
    let state = FormState::of(&item);
    let kinds: Vec<EntryKind> = state.entries().map(|e| e.kind()).collect();
    assert_eq!(kinds.len(), 5);
    assert_eq!(ItemForm::FORM_NAME, "ItemForm");
}
