use concurrency_guard::RenderState;

#[derive(RenderState)]
#[render_state(label = "Contact")]
struct Form {
    #[render_state(key)]
    id: i64,
    #[render_state(label = First)]
    first: String,
    #[render_state(label = "")]
    second: String,
    #[render_state(label)]
    third: String,
    #[render_state(skip, label = "Views")]
    views: u64,
    #[render_state(label = "A", label = "B")]
    fourth: String,
}

fn main() {}
