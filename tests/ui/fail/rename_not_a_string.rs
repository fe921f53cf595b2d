use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(rename = qty)]
    quantity: u32,
    #[render_state(rename = 3)]
    other: u32,
    #[render_state(rename)]
    third: u32,
}

fn main() {}
