//! The guard's HTTP behaviour through a real axum router, one module per
//! topic; the shared fixture is `tests/common`. One test binary, so the
//! tests link once.

#[path = "../common/mod.rs"]
mod common;

mod catalogue;
mod conditional;
mod conflict_labels;
mod conflict_page;
mod early_warning;
mod early_warning_htmx;
mod embed_rules;
mod guard_embed;
mod guard_flow;
mod guard_multipart;
mod guard_refusals;
mod htmx;
mod htmx_app_page;
mod htmx_script;
mod htmx_token_sources;
mod if_match_forms;
mod key_rotation_load;
mod live_rebase;
mod lock_faults;
mod merge;
mod merge_as_browsers_submit;
mod method_not_allowed;
mod nested;
mod redisplay;
mod refusal_layout;
mod reload_link;
mod render_check;
mod route_scoping;
mod security;
mod security_lock;
mod stale_delete;
mod templates;
mod transactional;
mod unknown_fields;
mod unreadable_body;
mod withheld;
