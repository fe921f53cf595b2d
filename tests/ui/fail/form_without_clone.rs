use axum::extract::FromRequestParts;
use axum::http::{StatusCode, request::Parts};
use concurrency_guard::{ConcurrencyGuardLayer, Key, RenderState};

#[derive(RenderState)]
struct ItemForm {
    #[render_state(key)]
    id: i64,
    name: String,
}

impl FromRequestParts<()> for ItemForm {
    type Rejection = StatusCode;
    async fn from_request_parts(_: &mut Parts, _: &()) -> Result<Self, StatusCode> {
        Err(StatusCode::NOT_FOUND)
    }
}

fn main() {
    let _layer = ConcurrencyGuardLayer::<ItemForm, ()>::new(Key::generate(), ());
}
