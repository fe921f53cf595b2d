use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(skip, key)]
    id: i64,
}

fn main() {}
