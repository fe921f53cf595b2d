//! What changed under a user's feet: the [`Conflict`] a stale submission meets.

use std::fmt;

use crate::claims::Claims;
use crate::fingerprint::StateDigests;
use crate::state::FormState;
use crate::token::ConcurrencyToken;

/// A submission based on data that changed since its form was rendered.
///
/// Says which inputs changed (by form field name, with the values they
/// render now) and whether a context value changed. The guard answers it
/// with a 409 page by default; a handler can take it over instead (see
/// [`ConflictHandling`](crate::ConflictHandling)).
#[derive(Debug, Clone)]
pub struct Conflict {
    form: &'static str,
    changed: Option<Vec<ChangedInput>>,
    context_changed: bool,
    current: Vec<(String, String)>,
    context: Vec<(String, String)>,
    checkboxes: Vec<String>,
    /// Each input's control, in form order.
    controls: Vec<(String, crate::Control)>,
    /// Each labelled entry's name and label (`FormState::label`).
    labels: Vec<(String, String)>,
    submitted: Option<Vec<(String, String)>>,
    yours: Option<Vec<String>>,
    proposal: Option<Vec<(String, String)>>,
    fresh_token: Option<ConcurrencyToken>,
    debug: Option<Vec<EntryDiff>>,
}

/// In debug mode, one entry of the form state that differs between the
/// form as rendered and as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDiff {
    /// What the entry is.
    pub kind: crate::EntryKind,
    /// Its name.
    pub name: String,
    /// Its value when the form was rendered (`None`: it was not there).
    pub then: Option<String>,
    /// Its value now (`None`: it is gone).
    pub now: Option<String>,
}

/// An input whose value changed since the form was rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedInput {
    /// The form field's name.
    pub name: String,
    /// The value it renders now.
    pub current: String,
}

impl Conflict {
    pub(crate) fn new(
        form: &'static str,
        claims: &Claims,
        now: &StateDigests,
        state: &FormState,
    ) -> Conflict {
        let context_changed = claims.context != now.context;
        let inputs: Vec<_> = state.inputs().collect();
        let changed = if claims.inputs.len() == now.inputs.len() && now.inputs.len() == inputs.len()
        {
            let changed: Vec<ChangedInput> = claims
                .inputs
                .iter()
                .zip(&now.inputs)
                .zip(&inputs)
                .filter(|((then, now), _)| then != now)
                .map(|(_, entry)| ChangedInput {
                    name: entry.name().to_owned(),
                    current: entry.value().to_owned(),
                })
                .collect();
            // Something changed, but neither an input nor the context: the
            // form's layout changed (entries reordered); say we do not know.
            if changed.is_empty() && !context_changed {
                None
            } else {
                Some(changed)
            }
        } else {
            None
        };
        Conflict {
            form,
            changed,
            context_changed,
            current: inputs
                .iter()
                .map(|e| (e.name().to_owned(), e.value().to_owned()))
                .collect(),
            checkboxes: inputs
                .iter()
                .filter(|e| e.omitted_when_empty())
                .map(|e| e.name().to_owned())
                .collect(),
            controls: inputs
                .iter()
                .map(|e| (e.name().to_owned(), e.control()))
                .collect(),
            labels: state
                .entries()
                .filter_map(|e| Some((e.name().to_owned(), e.label()?.to_owned())))
                .collect(),
            context: state
                .entries()
                .filter(|e| e.kind() == crate::EntryKind::Context)
                .map(|e| (e.name().to_owned(), e.value().to_owned()))
                .collect(),
            submitted: None,
            yours: None,
            proposal: None,
            fresh_token: None,
            debug: None,
        }
    }

    /// The form's [`FORM_NAME`](crate::RenderState::FORM_NAME).
    pub fn form_name(&self) -> &'static str {
        self.form
    }

    /// The inputs someone else changed, in form order, but those the user
    /// submitted with exactly their value now (nothing of theirs is
    /// overwritten); `None` when the token cannot tell (the form's layout
    /// changed, or it has more than [`MAX_INPUTS`](crate::MAX_INPUTS) inputs).
    pub fn changed_inputs(&self) -> Option<&[ChangedInput]> {
        self.changed.as_deref()
    }

    /// Whether `name` is among the inputs that changed (`true` when unknown).
    pub fn input_changed(&self, name: &str) -> bool {
        match &self.changed {
            Some(changed) => changed.iter().any(|c| c.name == name),
            None => true,
        }
    }

    /// Whether a context value (shown, not editable) changed.
    pub fn context_changed(&self) -> bool {
        self.context_changed
    }

    /// Every input with the value it renders now, in form order.
    pub fn current_inputs(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.current.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The inputs a browser leaves out when empty (checkboxes: `bool`).
    pub fn checkboxes(&self) -> impl Iterator<Item = &str> + '_ {
        self.checkboxes.iter().map(String::as_str)
    }

    /// Whether input `name` is a checkbox (see [`Conflict::checkboxes`]).
    pub fn is_checkbox(&self, name: &str) -> bool {
        self.checkboxes.iter().any(|n| n == name)
    }

    /// The control input `name` is rendered as (`None`: no such input).
    pub fn control(&self, name: &str) -> Option<crate::Control> {
        self.controls
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, c)| *c)
    }

    /// The label the form state gives entry `name` (`#[render_state(label =
    /// "…")]`, [`FormState::label`](crate::FormState::label)), if any.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l.as_str())
    }

    /// Every context value (shown, not editable) as it is now, in form order.
    pub fn current_context(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.context.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// What the user submitted, field by field, when the guard read it (an
    /// urlencoded body); the token field is left out.
    pub fn submitted(&self) -> Option<&[(String, String)]> {
        self.submitted.as_deref()
    }

    /// What the user submitted, as the application's own form type `F`
    /// (deserialized as axum's `Form<F>` does, with `serde_urlencoded`).
    ///
    /// # Errors
    ///
    /// When the guard did not read the submission (a multipart body, or a
    /// token sent in a header), or when it does not deserialize into `F`
    /// (a field missing or of the wrong type).
    pub fn submitted_as<F: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<F, serde::de::value::Error> {
        use serde::de::Error as _;
        let submitted = self.submitted.as_deref().ok_or_else(|| {
            serde::de::value::Error::custom(
                "the guard did not read this submission (multipart, or a token in a header)",
            )
        })?;
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(submitted)
            .finish();
        serde_urlencoded::from_str(&encoded)
    }

    /// The first value the user submitted for field `name`.
    pub fn submitted_value(&self, name: &str) -> Option<&str> {
        self.submitted
            .as_deref()?
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the user changed input `name` (compared with the form as it
    /// was rendered); `None` when the guard could not tell (no urlencoded
    /// body, or the form's layout changed).
    pub fn user_changed(&self, name: &str) -> Option<bool> {
        Some(self.yours.as_ref()?.iter().any(|n| n == name))
    }

    /// The inputs changed on both sides (to different values): what
    /// merging cannot settle. `None` when unknown.
    pub fn overlapping(&self) -> Option<Vec<&str>> {
        let yours = self.yours.as_ref()?;
        let changed = self.changed.as_ref()?;
        Some(
            changed
                .iter()
                .filter(|c| {
                    yours.contains(&c.name) && self.submitted_value(&c.name) != Some(&c.current)
                })
                .map(|c| c.name.as_str())
                .collect(),
        )
    }

    /// What to pre-fill a re-submission with: the user's changes on top of
    /// the current values (inputs the user did not change carry their value
    /// now). `None` when the submission was not read (multipart, header token).
    pub fn proposal(&self) -> Option<&[(String, String)]> {
        self.proposal.as_deref()
    }

    /// In debug mode (`with_debug(true)`), every entry that differs between
    /// the form as rendered and as it is now, with both values.
    pub fn debug_entries(&self) -> Option<&[EntryDiff]> {
        self.debug.as_deref()
    }

    /// A token for the data as it is now: a form re-rendered with it and
    /// submitted again overwrites the other change knowingly.
    pub fn fresh_token(&self) -> Option<&ConcurrencyToken> {
        self.fresh_token.as_ref()
    }

    pub(crate) fn with_submitted(mut self, submitted: Option<Vec<(String, String)>>) -> Conflict {
        self.proposal = submitted.clone();
        self.submitted = submitted;
        self
    }

    pub(crate) fn with_sides(mut self, sides: &[crate::merge::InputSides]) -> Conflict {
        self.yours = Some(
            sides
                .iter()
                .filter(|s| s.user_changed)
                .map(|s| s.name.clone())
                .collect(),
        );
        if let Some(submitted) = &self.submitted {
            self.proposal = Some(crate::merge::rebase(submitted, sides));
        }
        // An input the user submits with exactly its value now overwrites
        // nothing: it is not one to resolve.
        if let Some(changed) = &mut self.changed {
            changed.retain(|c| !sides.iter().any(|s| s.name == c.name && s.settled()));
        }
        self
    }

    pub(crate) fn with_debug(mut self, debug: Vec<EntryDiff>) -> Conflict {
        self.debug = Some(debug);
        self
    }

    pub(crate) fn with_fresh_token(mut self, token: ConcurrencyToken) -> Conflict {
        self.fresh_token = Some(token);
        self
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("someone else changed this record since the form was opened")?;
        match &self.changed {
            Some(changed) if !changed.is_empty() => {
                f.write_str(" (changed: ")?;
                for (i, c) in changed.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(&c.name)?;
                }
                if self.context_changed {
                    f.write_str(", and what the form shows around them")?;
                }
                f.write_str(")")?;
            }
            _ if self.context_changed => f.write_str(" (what the form shows changed)")?,
            _ => {}
        }
        f.write_str("; reload the form to see the current data")
    }
}

impl std::error::Error for Conflict {}
