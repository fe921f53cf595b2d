use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(skip)]
    #[render_state(context)]
    stock: i64,
}

fn main() {}
