use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Settings {
    #[render_state(singleton)]
    site_name: String,
}

fn main() {}
