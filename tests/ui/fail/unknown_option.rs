use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(hidden)]
    secret: String,
}

fn main() {}
