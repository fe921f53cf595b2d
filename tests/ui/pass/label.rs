use concurrency_guard::{FormState, RenderState};

#[derive(RenderState)]
struct ContactForm {
    #[render_state(key, label = "Contact number")]
    id: i64,
    #[render_state(rename = "first", label = "First name")]
    first_name: String,
    #[render_state(label = "Subscribed", checkbox, with = one_or_empty)]
    subscribed: bool,
    #[render_state(context, label = "Last saved by")]
    saved_by: String,
    email: String,
}

fn one_or_empty(v: &bool) -> &'static str {
    if *v { "1" } else { "" }
}

fn main() {
    let form = ContactForm {
        id: 1,
        first_name: "Ada".into(),
        subscribed: true,
        saved_by: "ann".into(),
        email: "ada@example.com".into(),
    };
    let state = FormState::of(&form);
    let labels: Vec<(&str, Option<&str>)> = state.entries().map(|e| (e.name(), e.label())).collect();
    assert_eq!(
        labels,
        [
            ("id", Some("Contact number")),
            ("first", Some("First name")),
            ("subscribed", Some("Subscribed")),
            ("saved_by", Some("Last saved by")),
            ("email", None),
        ]
    );
    // A label is metadata: the state without labels encodes alike.
    let mut plain = FormState::new();
    plain
        .key("id", &1)
        .input("first", "Ada")
        .input_as(concurrency_guard::Control::Checkbox, "subscribed", "1")
        .context("saved_by", "ann")
        .input("email", "ada@example.com");
    assert_eq!(format!("{state:?}"), format!("{plain:?}"));
}
