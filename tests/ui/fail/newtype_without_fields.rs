use concurrency_guard::RenderState;

struct Model {
    id: i32,
}

#[derive(RenderState)]
struct PostForm(#[render_state(key)] Model);

#[derive(RenderState)]
struct Wrong {
    #[render_state(fields(id(key)))]
    id: i32,
}

#[derive(RenderState)]
struct Nested(#[render_state(fields(id(key, fields(x))))] Model);

fn main() {}
