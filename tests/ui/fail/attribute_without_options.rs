use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state]
    name: String,
    #[render_state = "skip"]
    other: String,
}

fn main() {}
