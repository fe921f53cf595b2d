//! A small inventory manager guarded against lost updates.
//!
//! ```text
//! cargo run --example inventory
//! ```
//!
//! - `/` lists the items; each row has a "+1 stock" form whose token the list
//!   handler issues itself, one per row ([`ConcurrencyToken::issue`]), and
//!   the template renders (explicit rendering).
//! - `/items/{id}` edits an item; the guard loads it, signs a token and puts
//!   it in the page's post forms (auto-embed: the template does not mention
//!   the token). Saving and deleting (`POST /items/{id}/delete`) go through
//!   the same guard.
//! - `/items/new` creates an item (nothing to guard yet).
//!
//! Open an item in two browser windows, save in one, then in the other: the
//! second save is refused with 409: the edit page itself, rendered for the
//! current data by `edit` below, with what was typed kept and an alert naming
//! the changed fields. The app has no conflict code of its own.
//!
//! Data: SQLite file `inventory.db` in the current directory (or the path in
//! `INVENTORY_DB`), created on first start; `DATABASE_URL=postgres://…`
//! uses Postgres instead, with the same queries (sqlx's `Any` driver), and
//! the guards' per-record lock in Postgres too (`PgAdvisoryLock`): run
//! as many processes as you like on one database, behind a load balancer,
//! with the same `CONCURRENCY_GUARD_KEY`.
//! Address: `ADDR` (default `127.0.0.1:3000`; port 0 picks a free one).
//! Key: `CONCURRENCY_GUARD_KEY` (base64, e.g. `openssl rand -base64 32`),
//! else a random one per start.
//!
//! Templates: minijinja. Templates are read at run time (no compile-time
//! code generation), the crate is light to compile, and its Jinja syntax is
//! what many people already write. They are built into the binary with
//! `include_str!`, and auto-escaping is on for every template.

mod db;
mod forms;

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use concurrency_guard::{
    ConcurrencyGuardLayer, ConcurrencyToken, Guarded, Key, KeyError, KeyRing, RecordLock,
};
use minijinja::{AutoEscape, Environment, Value, context};
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use forms::{ItemForm, StockForm, parse_price, price_text};

const CATEGORIES: &[&str] = &["Tools", "Garden", "Kitchen", "Office"];

/// What every handler and loader shares.
#[derive(Clone)]
struct App(Arc<Inner>);

struct Inner {
    db: AnyPool,
    templates: Environment<'static>,
    /// The keys the guards sign with; the list page signs its row tokens with them too.
    keys: KeyRing,
    /// Where the guards' per-record locks live: in Postgres when the data
    /// is there, else in this process.
    record_lock: RecordLock,
}

impl Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .init();
    let keys = keys()?;
    let db = db::connect().await?;
    println!("Data: {}", db.description);
    let app = App(Arc::new(Inner {
        db: db.pool,
        templates: templates()?,
        keys,
        record_lock: db.record_lock,
    }));

    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("Inventory running at http://{}/", listener.local_addr()?);
    axum::serve(listener, router(app)).await?;
    Ok(())
}

fn keys() -> Result<KeyRing, KeyError> {
    match Key::from_env("CONCURRENCY_GUARD_KEY") {
        Ok(key) => Ok(key.into()),
        Err(KeyError::MissingVar { .. }) => {
            println!(
                "Note: CONCURRENCY_GUARD_KEY is not set; using a random key. \
                 Forms opened before a restart will be refused after it."
            );
            Ok(Key::generate().into())
        }
        Err(e) => Err(e),
    }
}

fn router(app: App) -> Router {
    // The edit page, its save and its delete: one form, one guard. An open
    // edit page checks every few seconds whether it went stale
    // (`EARLY_WARNING_SECS`, default 5) and takes other people's changes
    // into the fields the user has not touched (live rebase; `LIVE_REBASE=0`
    // shows a "reload" banner instead).
    let every = std::env::var("EARLY_WARNING_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let live_rebase = std::env::var("LIVE_REBASE").map_or(true, |v| v != "0");
    let item = Router::new()
        .route("/items/{id}", get(edit).post(save))
        .route("/items/{id}/delete", post(delete))
        .route_layer(
            ConcurrencyGuardLayer::<ItemForm, _>::new(app.keys.clone(), app.clone())
                .with_record_lock(app.record_lock.clone())
                .with_early_warning(Duration::from_secs(every))
                .with_live_rebase(live_rebase),
        );
    // The JSON API for the same records: the same form type guards it, with
    // `ETag` on GET and `If-Match` on PUT instead of the form token.
    let api = Router::new()
        .route("/api/items/{id}", get(api_item).put(api_update))
        .route_layer(
            ConcurrencyGuardLayer::<ItemForm, _>::new(app.keys.clone(), app.clone())
                .with_record_lock(app.record_lock.clone()),
        );
    // The list page's "+1 stock" forms. The list page itself is not behind
    // this guard: it issues one token per row.
    let stock = Router::new()
        .route("/items/{id}/stock", post(add_stock))
        .route_layer(
            ConcurrencyGuardLayer::<StockForm, _>::new(app.keys.clone(), app.clone())
                .with_record_lock(app.record_lock.clone()),
        );
    Router::new()
        .route("/", get(list))
        .route("/items/new", get(new_item).post(create))
        .merge(item)
        .merge(stock)
        .merge(api)
        .with_state(app)
}

fn templates() -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_template("base.html", include_str!("templates/base.html"))?;
    env.add_template("list.html", include_str!("templates/list.html"))?;
    env.add_template("item.html", include_str!("templates/item.html"))?;
    Ok(env)
}

fn render(app: &App, name: &str, ctx: Value) -> Result<Html<String>, AppError> {
    Ok(Html(app.templates.get_template(name)?.render(ctx)?))
}

/// A message on the list page after a change.
#[derive(Deserialize, Default)]
struct Flash {
    saved: Option<i64>,
    stocked: Option<i64>,
    deleted: Option<String>,
}

async fn list(
    State(app): State<App>,
    Query(flash): Query<Flash>,
) -> Result<Html<String>, AppError> {
    let items = db::items(&app.db).await?;
    let name_of = |id| items.iter().find(|i| i.id == id).map(|i| i.name.as_str());
    let message = match flash {
        Flash {
            saved: Some(id), ..
        } => name_of(id).map(|n| format!("Saved “{n}”.")),
        Flash {
            stocked: Some(id), ..
        } => name_of(id).map(|n| format!("Added one “{n}” to the stock.")),
        Flash {
            deleted: Some(name),
            ..
        } => Some(format!("Deleted “{name}”.")),
        _ => None,
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            // One token per row, bound to that row's record and stock.
            let token = ConcurrencyToken::issue(&app.keys, &StockForm::of(item));
            context! {
                id => item.id,
                name => item.name,
                category => item.category,
                price => price_text(&item.price_cents),
                active => item.active,
                stock => item.stock,
                token => Value::from_safe_string(token.to_string()),
            }
        })
        .collect();
    render(&app, "list.html", context! { rows, message })
}

/// "+1 stock": runs only if the row still shows the stock it showed.
async fn add_stock(
    State(app): State<App>,
    Guarded(row): Guarded<StockForm>,
) -> Result<Redirect, AppError> {
    db::add_stock(&app.db, row.id, 1).await?;
    tracing::info!(item = %row.name, stock = row.stock + 1, "stock added");
    Ok(Redirect::to(&format!("/?stocked={}", row.id)))
}

/// The edit form's fields as the inputs show them.
#[derive(Serialize, Default)]
struct Fields {
    name: String,
    price: String,
    category: String,
    active: bool,
    description: String,
}

impl Fields {
    fn of(item: &ItemForm) -> Fields {
        Fields {
            name: item.name.clone(),
            // The same function as `#[render_state(with = price_text)]`:
            // the page shows exactly what the token covers.
            price: price_text(&item.price_cents),
            category: item.category.clone(),
            active: item.active,
            description: item.description.clone(),
        }
    }
}

/// What the edit form submits.
#[derive(Deserialize)]
struct Input {
    name: String,
    price: String,
    category: String,
    /// A checkbox submits "on" when checked and nothing when not.
    active: Option<String>,
    description: String,
}

impl Input {
    fn fields(&self) -> Fields {
        Fields {
            name: self.name.clone(),
            price: self.price.clone(),
            category: self.category.clone(),
            active: self.active.is_some(),
            description: self.description.clone(),
        }
    }

    fn validate(&self) -> Result<db::Changes, BTreeMap<&'static str, &'static str>> {
        let mut errors = BTreeMap::new();
        let name = self.name.trim();
        if name.is_empty() {
            errors.insert("name", "Give the item a name.");
        }
        let price_cents = parse_price(&self.price);
        if price_cents.is_none() {
            errors.insert("price", "Write the price as 12 or 12.50.");
        }
        if !CATEGORIES.contains(&self.category.as_str()) {
            errors.insert("category", "Pick a category from the list.");
        }
        match price_cents {
            Some(price_cents) if errors.is_empty() => Ok(db::Changes {
                name: name.to_owned(),
                price_cents,
                category: self.category.clone(),
                active: self.active.is_some(),
                // Browsers submit textarea lines with CRLF.
                description: self.description.replace("\r\n", "\n"),
            }),
            _ => Err(errors),
        }
    }
}

/// The edit or create page.
fn item_page(
    app: &App,
    item: Option<&ItemForm>,
    fields: &Fields,
    errors: &BTreeMap<&str, &str>,
) -> Result<Html<String>, AppError> {
    render(
        app,
        "item.html",
        context! {
            item,
            fields,
            errors,
            categories => CATEGORIES,
        },
    )
}

/// The edit page. The guard loaded the item (`Guarded`), signed a token for
/// what it shows and puts it in the page's forms.
async fn edit(
    State(app): State<App>,
    Guarded(mut item): Guarded<ItemForm>,
) -> Result<Html<String>, AppError> {
    // Counting the view changes `views`, which takes no part in the check
    // (`#[render_state(skip)]`): an open form stays valid.
    db::count_view(&app.db, item.id).await?;
    item.views += 1;
    item_page(&app, Some(&item), &Fields::of(&item), &BTreeMap::new())
}

/// Saves the edit form. Runs only if nothing the form showed has changed
/// since it was rendered; `current` is the item as it is now.
async fn save(
    State(app): State<App>,
    Guarded(current): Guarded<ItemForm>,
    Form(input): Form<Input>,
) -> Result<Response, AppError> {
    match input.validate() {
        Ok(changes) => {
            db::update(&app.db, current.id, &changes).await?;
            Ok(Redirect::to(&format!("/?saved={}", current.id)).into_response())
        }
        Err(errors) => {
            // Shown again with the errors: the guard embeds a fresh token for
            // the item as it is now (what the user's edits apply to) in a
            // 4xx HTML answer, as it does on GET.
            let page = item_page(&app, Some(&current), &input.fields(), &errors)?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// Deletes the item, if it is still as the page showed it.
async fn delete(
    State(app): State<App>,
    Guarded(item): Guarded<ItemForm>,
) -> Result<Redirect, AppError> {
    db::delete(&app.db, item.id).await?;
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("deleted", &item.name)
        .finish();
    Ok(Redirect::to(&format!("/?{query}")))
}

/// An item as the JSON API shows and takes it.
#[derive(Serialize, Deserialize)]
struct ApiItem {
    name: String,
    /// "12.50"
    price: String,
    category: String,
    active: bool,
    description: String,
}

/// `GET /api/items/{id}`: the guard adds the `ETag`, and answers
/// `If-None-Match` with 304 before this runs.
async fn api_item(Guarded(item): Guarded<ItemForm>) -> Json<ApiItem> {
    Json(ApiItem {
        price: price_text(&item.price_cents),
        name: item.name,
        category: item.category,
        active: item.active,
        description: item.description,
    })
}

/// `PUT /api/items/{id}` with `If-Match: <ETag>`: runs only if the item is
/// still as the client read it (else the guard answers 412; without
/// `If-Match`, 428).
async fn api_update(
    State(app): State<App>,
    Guarded(current): Guarded<ItemForm>,
    Json(item): Json<ApiItem>,
) -> Result<Response, AppError> {
    let input = Input {
        name: item.name,
        price: item.price,
        category: item.category,
        active: item.active.then(|| "on".to_owned()),
        description: item.description,
    };
    match input.validate() {
        Ok(changes) => {
            db::update(&app.db, current.id, &changes).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(errors) => Ok((
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(serde_json::json!({ "errors": errors })),
        )
            .into_response()),
    }
}

async fn new_item(State(app): State<App>) -> Result<Html<String>, AppError> {
    let fields = Fields {
        category: CATEGORIES[0].into(),
        active: true,
        ..Fields::default()
    };
    item_page(&app, None, &fields, &BTreeMap::new())
}

async fn create(State(app): State<App>, Form(input): Form<Input>) -> Result<Response, AppError> {
    match input.validate() {
        Ok(changes) => {
            let id = db::insert(&app.db, &changes).await?;
            Ok(Redirect::to(&format!("/?saved={id}")).into_response())
        }
        Err(errors) => {
            let page = item_page(&app, None, &input.fields(), &errors)?;
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page).into_response())
        }
    }
}

/// A failure of ours: logged, answered with 500.
struct AppError(String);

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError(format!("database: {e}"))
    }
}

impl From<minijinja::Error> for AppError {
    fn from(e: minijinja::Error) -> Self {
        AppError(format!("template: {e:#}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        tracing::error!(error = %self.0, "request failed");
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side.",
        )
            .into_response()
    }
}
