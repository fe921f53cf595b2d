//! The record types of the `posts` example, shaped as SeaORM's code
//! generator writes them into an `entity` crate (one module per table, each
//! with a `Model`). No ORM dependency: the point is only that the model is
//! a type of another crate, which the application cannot derive or
//! implement `RenderState` on.

pub mod post;
