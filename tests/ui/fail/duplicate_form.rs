use concurrency_guard::RenderState;

#[derive(RenderState)]
#[render_state(form = "a")]
#[render_state(form = "b")]
struct Form {
    name: String,
}

fn main() {}
