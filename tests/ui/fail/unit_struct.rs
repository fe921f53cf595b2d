use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Nothing;

fn main() {}
