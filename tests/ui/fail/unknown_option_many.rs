use concurrency_guard::RenderState;

// Every mistake is reported, not only the first.
#[derive(RenderState)]
struct Form {
    #[render_state(key, default = 3, readonly)]
    id: i64,
    #[render_state(skip(always))]
    views: u64,
}

fn main() {}
