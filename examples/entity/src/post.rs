//! The `post` table.

use std::fmt;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

/// One row of `post`, as `sea-orm-cli generate entity` writes it (less the
/// ORM's derives).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Model {
    /// The primary key.
    pub id: i32,
    /// The headline.
    pub title: String,
    /// The text.
    pub body: String,
    /// Draft or published.
    pub status: Status,
    /// The day it appears under.
    pub published_on: NaiveDate,
    /// When it is announced.
    pub announce_at: NaiveDateTime,
    /// The time of day a reminder goes out.
    pub remind_at: NaiveTime,
    /// How often it was read: changes all the time, not shown in the form.
    pub views: i64,
    /// How many comments it has: shown beside the form, not editable.
    pub comments: i64,
}

/// A post's status, stored as text (SeaORM's `DeriveActiveEnum` with
/// `rs_type = "String"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not visible yet.
    Draft,
    /// Visible.
    Published,
}

impl Status {
    /// Every status, in the order a form lists them.
    pub const ALL: [Status; 2] = [Status::Draft, Status::Published];
}

/// The stored text: `draft`, `published`.
impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Draft => "draft",
            Status::Published => "published",
        })
    }
}

/// The text is not a status.
#[derive(Debug)]
pub struct UnknownStatus;

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the status is `draft` or `published`")
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Status, UnknownStatus> {
        match s {
            "draft" => Ok(Status::Draft),
            "published" => Ok(Status::Published),
            _ => Err(UnknownStatus),
        }
    }
}
