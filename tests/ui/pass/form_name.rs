use concurrency_guard::RenderState;

#[derive(RenderState)]
#[render_state(form = "item")]
struct ItemForm {
    name: String,
}

#[derive(RenderState)]
#[render_state(form = "r#raw and spaces")]
struct r#Raw {}

fn main() {
    assert_eq!(ItemForm::FORM_NAME, "item");
    assert_eq!(Raw::FORM_NAME, "r#raw and spaces");
    let _ = ItemForm {
        name: String::new(),
    }
    .name;
}
