use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Form {
    #[render_state(with = "show")]
    a: u32,
    #[render_state(with = |v: &u32| *v)]
    b: u32,
    #[render_state(with)]
    c: u32,
}

fn show(v: &u32) -> u32 {
    *v
}

fn main() {}
