use concurrency_guard::RenderState;

#[derive(RenderState)]
struct Id(i64, String);

fn main() {}
