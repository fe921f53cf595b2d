use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(form = "name")]
    name: String,
}

fn main() {}
