use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(key, key)]
    id: i64,
    #[render_state(rename = "a")]
    #[render_state(rename = "b")]
    name: String,
}

fn main() {}
