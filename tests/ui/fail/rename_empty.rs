use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(rename = "")]
    quantity: u32,
}

fn main() {}
