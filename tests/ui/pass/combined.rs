use concurrency_guard::RenderState;

mod render {
    pub fn upper(v: &str) -> String {
        v.to_uppercase()
    }
}

/// A function named like the generated code's parameter stays reachable.
fn state(v: &u32) -> u32 {
    v + 1
}

#[derive(RenderState)]
struct Order {
    #[render_state(key, rename = "order_id", with = state)]
    id: u32,
    #[render_state(key)]
    #[render_state(with = render::upper)]
    region: String,
    #[render_state(context, rename = "customer_name", with = render::upper)]
    customer: String,
    #[render_state(with = render::upper, rename = "note")]
    #[render_state(context)]
    remark: String,
    #[render_state()]
    quantity: u32,
}

fn main() {
    let order = Order {
        id: 1,
        region: "eu".into(),
        customer: "ann".into(),
        remark: "".into(),
        quantity: 2,
    };
    let state = concurrency_guard::FormState::of(&order);
    let names: Vec<&str> = state.entries().map(|e| e.name()).collect();
    assert_eq!(
        names,
        ["order_id", "region", "customer_name", "note", "quantity"]
    );
    assert_eq!(state.entries().next().unwrap().value(), "2");
    assert_eq!(Order::FORM_NAME, "Order");
}
