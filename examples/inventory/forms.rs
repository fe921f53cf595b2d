//! The two forms the guard checks, and how each loads what it shows now.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use concurrency_guard::RenderState;
use serde::Serialize;

use crate::App;
use crate::db;

/// The edit form of one item (`/items/{id}`), as the page renders it.
///
/// Every field the page shows takes part, each as the input renders it:
/// the price as "12.50", the checkbox as "on" or "".
#[derive(Clone, Debug, RenderState, Serialize)]
#[render_state(form = "item")]
pub struct ItemForm {
    /// Which item: binds tokens to it.
    #[render_state(key)]
    pub id: i64,
    pub name: String,
    /// Stored in cents, shown with two decimals in the input named `price`.
    #[render_state(rename = "price", with = price_text)]
    pub price_cents: i64,
    /// A `<select>`: the option's value.
    pub category: String,
    /// A checkbox: `true` renders "on", `false` "" (what the browser submits).
    pub active: bool,
    /// A `<textarea>`.
    pub description: String,
    /// How often the page was opened: changes on every view, so it takes
    /// no part (or every save would conflict with every other view).
    #[render_state(skip)]
    pub views: i64,
    /// Shown on the page, not editable there (the list page's "+1" changes
    /// it): a change still makes an open edit form stale.
    #[render_state(context)]
    pub stock: i64,
}

/// One row's "+1 stock" form on the list page.
#[derive(Clone, Debug, RenderState)]
#[render_state(form = "stock")]
pub struct StockForm {
    #[render_state(key)]
    pub id: i64,
    /// The stock the row shows: "+1" on a row someone changed meanwhile is
    /// refused.
    #[render_state(context)]
    pub stock: i64,
    /// For the message after the change; not checked.
    #[render_state(skip)]
    pub name: String,
}

/// How a price renders, in the form and in the token: "12.50".
pub fn price_text(cents: &i64) -> String {
    let sign = if *cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// Reads a price typed as "12", "12.5" or "12.50" into cents.
pub fn parse_price(text: &str) -> Option<i64> {
    let text = text.trim();
    let (units, fraction) = text.split_once('.').unwrap_or((text, ""));
    if units.is_empty() || !units.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if fraction.len() > 2 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let units: i64 = units.parse().ok()?;
    let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
    units.checked_mul(100)?.checked_add(fraction)
}

/// Why a form could not be loaded: the guard answers with it as is.
pub enum LoadError {
    BadPath(Response),
    NotFound,
    Database(sqlx::Error),
}

impl IntoResponse for LoadError {
    fn into_response(self) -> Response {
        match self {
            LoadError::BadPath(rejection) => rejection,
            LoadError::NotFound => (StatusCode::NOT_FOUND, "No such item").into_response(),
            LoadError::Database(e) => {
                tracing::error!(error = %e, "loading the item failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "The database failed").into_response()
            }
        }
    }
}

async fn path_id(parts: &mut Parts, app: &App) -> Result<i64, LoadError> {
    Path::<i64>::from_request_parts(parts, app)
        .await
        .map(|Path(id)| id)
        .map_err(|rejection| LoadError::BadPath(rejection.into_response()))
}

/// The guard's loader for `/items/{id}` and `/items/{id}/delete`.
impl FromRequestParts<App> for ItemForm {
    type Rejection = LoadError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, LoadError> {
        let id = path_id(parts, app).await?;
        db::item(&app.db, id)
            .await
            .map_err(LoadError::Database)?
            .ok_or(LoadError::NotFound)
    }
}

/// The guard's loader for `/items/{id}/stock`.
impl FromRequestParts<App> for StockForm {
    type Rejection = LoadError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, LoadError> {
        let id = path_id(parts, app).await?;
        let item = db::item(&app.db, id)
            .await
            .map_err(LoadError::Database)?
            .ok_or(LoadError::NotFound)?;
        Ok(StockForm::of(&item))
    }
}

impl StockForm {
    /// The "+1" form of the row that shows `item`.
    pub fn of(item: &ItemForm) -> StockForm {
        StockForm {
            id: item.id,
            stock: item.stock,
            name: item.name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        assert_eq!(price_text(&1250), "12.50");
        assert_eq!(price_text(&5), "0.05");
        assert_eq!(price_text(&-105), "-1.05");
        assert_eq!(parse_price("12"), Some(1200));
        assert_eq!(parse_price("12.5"), Some(1250));
        assert_eq!(parse_price(" 0.05 "), Some(5));
        for bad in ["", ".5", "1.234", "-1", "1e3", "abc", "1.x"] {
            assert_eq!(parse_price(bad), None, "{bad}");
        }
    }
}
