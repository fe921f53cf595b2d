use concurrency_guard::RenderState;

#[derive(RenderState)]
#[render_state(form = item)]
struct Form {
    name: String,
}

#[derive(RenderState)]
#[render_state(form = "")]
struct Other {
    name: String,
}

fn main() {}
