//! `#[derive(RenderState)]` through the public API: the entries it writes, and
//! which fields take part in the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use concurrency_guard::{ConcurrencyToken, EntryKind, FormState, Key, KeyRing, RenderState};

/// `(kind, name, value)` of every entry, in order.
fn entries<T: RenderState>(form: &T) -> Vec<(EntryKind, String, String)> {
    FormState::of(form)
        .entries()
        .map(|e| (e.kind(), e.name().to_owned(), e.value().to_owned()))
        .collect()
}

fn entry(kind: EntryKind, name: &str, value: &str) -> (EntryKind, String, String) {
    (kind, name.to_owned(), value.to_owned())
}

use EntryKind::{Context, Input, Key as K};

fn two_decimals(v: &f64) -> String {
    format!("{v:.2}")
}

mod render {
    pub fn upper(v: &str) -> String {
        v.to_uppercase()
    }
}

#[derive(Clone, RenderState)]
struct ItemForm {
    #[render_state(key)]
    id: i64,
    name: String,
    #[render_state(with = two_decimals)]
    price: f64,
    #[render_state(skip)]
    views: u64,
    #[render_state(context)]
    stock: i64,
}

fn item() -> ItemForm {
    ItemForm {
        id: 7,
        name: "Lamp".into(),
        price: 9.5,
        views: 3,
        stock: 12,
    }
}

#[test]
fn every_field_writes_one_entry_in_declaration_order() {
    assert_eq!(
        entries(&item()),
        vec![
            entry(K, "id", "7"),
            entry(Input, "name", "Lamp"),
            entry(Input, "price", "9.50"),
            entry(Context, "stock", "12"),
        ]
    );
}

#[test]
fn a_skipped_field_writes_no_entry() {
    let state = FormState::of(&item());
    assert!(state.entries().all(|e| e.name() != "views"));
    assert_eq!(state.input_count(), 2);
}

#[derive(RenderState)]
struct Order {
    #[render_state(rename = "qty")]
    quantity: u32,
    #[render_state(key, rename = "order_id")]
    id: u64,
    #[render_state(context)]
    #[render_state(rename = "customer_name", with = render::upper)]
    customer: String,
    #[render_state(with = two_decimals, rename = "total_price")]
    total: f64,
    r#type: &'static str,
    #[render_state(key, with = render::upper)]
    region: String,
}

#[test]
fn rename_and_with_combine_with_key_and_context() {
    let order = Order {
        quantity: 2,
        id: 40,
        customer: "ann".into(),
        total: 3.0,
        r#type: "rush",
        region: "eu".into(),
    };
    assert_eq!(
        entries(&order),
        vec![
            entry(Input, "qty", "2"),
            entry(K, "order_id", "40"),
            entry(Context, "customer_name", "ANN"),
            entry(Input, "total_price", "3.00"),
            entry(Input, "type", "rush"),
            entry(K, "region", "EU"),
        ]
    );
}

#[derive(RenderState)]
struct Membership {
    #[render_state(key)]
    team_id: u32,
    #[render_state(key)]
    user_id: u32,
    role: String,
}

#[test]
fn several_key_fields_make_a_composite_key() {
    let m = Membership {
        team_id: 1,
        user_id: 2,
        role: "admin".into(),
    };
    assert_eq!(
        entries(&m),
        vec![
            entry(K, "team_id", "1"),
            entry(K, "user_id", "2"),
            entry(Input, "role", "admin"),
        ]
    );
}

#[derive(RenderState)]
struct Labelled<'a, T, const N: usize>
where
    T: Clone,
{
    #[render_state(key)]
    id: T,
    label: &'a str,
    note: Option<T>,
    #[render_state(with = count)]
    slots: [u8; N],
}

fn count<const N: usize>(v: &[u8; N]) -> usize {
    v.iter().filter(|b| **b != 0).count()
}

#[test]
fn generic_structs_render_their_parameters() {
    let form = Labelled {
        id: 5u16,
        label: "five",
        note: Some(9u16),
        slots: [1, 0, 2],
    };
    assert_eq!(
        entries(&form),
        vec![
            entry(K, "id", "5"),
            entry(Input, "label", "five"),
            entry(Input, "note", "9"),
            entry(Input, "slots", "2"),
        ]
    );
    let text = Labelled::<String, 0> {
        id: "s".into(),
        label: "",
        note: None,
        slots: [],
    };
    assert_eq!(entries(&text)[2], entry(Input, "note", ""));
    assert_eq!(<Labelled<'_, String, 0>>::FORM_NAME, "Labelled");
}

#[derive(RenderState)]
#[render_state(form = "membership-v2", singleton)]
struct Renamed {
    name: String,
}

#[test]
fn form_name_is_the_struct_name_unless_given() {
    assert_eq!(ItemForm::FORM_NAME, "ItemForm");
    assert_eq!(Order::FORM_NAME, "Order");
    assert_eq!(Renamed::FORM_NAME, "membership-v2");
    let renamed = Renamed { name: "x".into() };
    assert_eq!(entries(&renamed), vec![entry(Input, "name", "x")]);
}

#[derive(RenderState)]
#[render_state(singleton)]
struct Empty {}

#[test]
fn a_struct_without_fields_writes_nothing() {
    assert_eq!(entries(&Empty {}), vec![]);
}

/// Issue 22, item 6: a keyless form says it is a singleton, and the trait
/// carries it; a form with a key is not one.
#[test]
fn singleton_is_declared() {
    const { assert!(Empty::SINGLETON && Renamed::SINGLETON) };
    const { assert!(!ItemForm::SINGLETON) };
}

// Reahl's participation table, read through tokens: what changes the token.

fn keys(byte: u8) -> KeyRing {
    KeyRing::new(1, Key::from_bytes(&[byte; 32]).unwrap())
}

fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn token(form: &ItemForm) -> String {
    ConcurrencyToken::issue_at(&keys(7), form, at())
        .value()
        .to_owned()
}

#[test]
fn the_token_is_deterministic_for_a_fixed_time_and_key() {
    assert_eq!(token(&item()), token(&item()));
}

#[test]
fn a_skipped_field_takes_no_part_in_the_token() {
    let mut changed = item();
    changed.views += 1000;
    assert_eq!(token(&changed), token(&item()));
}

#[test]
fn inputs_context_and_key_all_change_the_token() {
    let base = token(&item());
    type Change = (&'static str, fn(&mut ItemForm));
    let changes: [Change; 4] = [
        ("input", |f| f.name.push('!')),
        ("input with", |f| f.price += 0.01),
        ("context", |f| f.stock -= 1),
        ("key", |f| f.id += 1),
    ];
    for (what, change) in changes {
        let mut form = item();
        change(&mut form);
        assert_ne!(token(&form), base, "changing the {what} field");
    }
}

#[test]
fn a_change_hidden_by_with_leaves_the_token_alone() {
    // `with` decides what takes part: 9.5 and 9.501 both render "9.50".
    let mut form = item();
    form.price = 9.501;
    assert_eq!(token(&form), token(&item()));
}

#[test]
fn the_same_state_under_another_key_gives_another_token() {
    let other = ConcurrencyToken::issue_at(&keys(8), &item(), at());
    assert_ne!(other.value(), token(&item()));
}

/// The form of DESIGN.md as written there, with a `Decimal` price and a
/// `Uuid` key (features `rust_decimal` and `uuid`).
#[cfg(all(feature = "rust_decimal", feature = "uuid"))]
#[test]
fn decimal_and_uuid_fields_render_as_their_display() {
    use std::str::FromStr;

    #[derive(RenderState)]
    struct DesignForm {
        #[render_state(key)]
        id: uuid::Uuid,
        name: String,
        price: rust_decimal::Decimal,
        #[render_state(skip)]
        #[allow(dead_code)]
        views: i64,
        #[render_state(context)]
        stock: i64,
    }
    let form = DesignForm {
        id: uuid::Uuid::from_str("67E55044-10B1-426F-9247-BB680E5FE0C8").unwrap(),
        name: "Desk lamp".into(),
        price: rust_decimal::Decimal::from_str("39.90").unwrap(),
        views: 3,
        stock: -2,
    };
    assert_eq!(
        entries(&form),
        vec![
            entry(K, "id", "67e55044-10b1-426f-9247-bb680e5fe0c8"),
            entry(Input, "name", "Desk lamp"),
            entry(Input, "price", "39.90"),
            entry(Context, "stock", "-2"),
        ]
    );
}
