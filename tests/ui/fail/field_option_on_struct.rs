use concurrency_guard::RenderState;

#[derive(RenderState)]
#[render_state(skip, rename = "f")]
#[render_state(with = show)]
struct Form {
    name: String,
}

fn show(v: &String) -> String {
    v.clone()
}

fn main() {}
