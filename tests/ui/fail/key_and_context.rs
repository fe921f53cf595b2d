use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(key, context)]
    id: i64,
    #[render_state(context)]
    #[render_state(key)]
    other_id: i64,
}

fn main() {}
