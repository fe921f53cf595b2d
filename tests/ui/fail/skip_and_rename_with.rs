use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(skip, rename = "v", with = show)]
    views: i64,
}

fn show(v: &i64) -> String {
    v.to_string()
}

fn main() {}
