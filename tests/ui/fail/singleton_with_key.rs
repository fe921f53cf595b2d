use concurrency_guard::RenderState;

#[derive(RenderState)]
#[render_state(singleton)]
struct Settings {
    #[render_state(key)]
    id: i64,
    site_name: String,
}

fn main() {}
