use concurrency_guard::{FormState, RenderState};

#[derive(RenderState)]
struct r#Match {
    r#type: String,
    #[render_state(key)]
    r#fn: u8,
    #[render_state(context, rename = "r#loop")]
    r#loop: bool,
}

fn main() {
    let form = Match {
        r#type: "t".into(),
        r#fn: 1,
        r#loop: true,
    };
    let state = FormState::of(&form);
    let names: Vec<&str> = state.entries().map(|e| e.name()).collect();
    assert_eq!(names, ["type", "fn", "r#loop"]);
    assert_eq!(Match::FORM_NAME, "Match");
}
