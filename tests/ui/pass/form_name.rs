use concurrency_guard::RenderState;

#[derive(RenderState)]
#[render_state(form = "item")]
struct ItemForm {
    #[render_state(key)]
    id: i64,
    name: String,
}

#[derive(RenderState)]
#[render_state(form = "r#raw and spaces", singleton)]
struct r#Raw {}

fn main() {
    assert_eq!(ItemForm::FORM_NAME, "item");
    assert_eq!(Raw::FORM_NAME, "r#raw and spaces");
    let form = ItemForm {
        id: 1,
        name: String::new(),
    };
    let _ = (form.id, form.name);
}
