use concurrency_guard::RenderState;

#[derive(RenderState)]
struct ItemForm {
    id: i64,
    name: String,
}

fn main() {}
