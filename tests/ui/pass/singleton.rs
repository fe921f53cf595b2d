use concurrency_guard::{FormState, RenderState};

/// One record only: no key, and the form says so.
#[derive(RenderState)]
#[render_state(singleton)]
struct Settings {
    site_name: String,
    #[render_state(context)]
    updated_by: String,
}

#[derive(RenderState)]
#[render_state(form = "settings-v2", singleton)]
struct Renamed {
    site_name: String,
}

fn main() {
    assert!(Settings::SINGLETON && Renamed::SINGLETON);
    assert_eq!(Renamed::FORM_NAME, "settings-v2");
    let state = FormState::of(&Settings {
        site_name: "shop".into(),
        updated_by: "ann".into(),
    });
    assert_eq!(state.input_named("site_name").unwrap().value(), "shop");
    let _ = Renamed { site_name: String::new() }.site_name;
}
