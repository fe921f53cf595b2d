use concurrency_guard::RenderState;

#[derive(RenderState)]
enum Shape {
    Circle { r: f64 },
    Square { side: f64 },
}

fn main() {}
