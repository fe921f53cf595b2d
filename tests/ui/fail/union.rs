use concurrency_guard::RenderState;

#[derive(RenderState)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
