//! The sentences people read after they typed or clicked something, on any platform: what
//! happened to their request or decision, the engine's refusal as it words it, or a short
//! apology with a reference when the fault is ours (the detail goes to the log, once, here).

use super::views::waiting_for;
use crate::domain::request::{AccessRequest, Progress};
use crate::engine::{EngineError, Submitted, World};

/// What to tell the person about an engine error: the refusal itself, or an apology.
pub fn refusal(error: &EngineError) -> String {
    if error.is_user_error() {
        capitalised(&error.to_string())
    } else {
        let reference = reference();
        tracing::error!(%error, reference, "a chat request failed");
        format!(
            "Something went wrong on our side (ref {reference}); nothing was changed. Try again in a minute, or tell your IAM team."
        )
    }
}

/// The apology for a failure outside the engine (a platform's API, a template).
pub fn apology(doing: &str) -> String {
    let reference = reference();
    tracing::error!(reference, doing, "a chat request failed");
    format!(
        "Something went wrong on our side while {doing} (ref {reference}); try again in a minute."
    )
}

/// A request went in: to whom it went, or that it was granted at once.
pub fn submitted(submitted: &Submitted, world: &World) -> String {
    let request = &submitted.request;
    let what = asked(request);
    match &submitted.grant {
        Some(grant) if grant.emergency => format!(
            "{}: emergency access to {what} is granted as {} and being set up now; security reviews it afterwards.",
            request.id, grant.id
        ),
        Some(grant) => format!(
            "{}: {what} is approved at once as {} and being set up now.",
            request.id, grant.id
        ),
        None => format!(
            "{}: {what} sent to {} ({}). You get a message when it is decided.",
            request.id,
            deciders(request, world),
            request.stage_summary()
        ),
    }
}

/// Who decides the current stage, by name, for the requester or an approver to read.
fn deciders(request: &AccessRequest, world: &World) -> String {
    let distinct = world.defaults().distinct_approvers;
    match waiting_for(request, &world.directory, distinct) {
        names if names.is_empty() => "its approvers".to_owned(),
        names => names,
    }
}

/// What an approval did, for the approver.
pub fn approved(request: &AccessRequest, progress: Option<&Progress>, world: &World) -> String {
    let id = request.id;
    match progress {
        Some(Progress::Counted { remaining, .. }) => format!(
            "You approved {id}; this stage needs {remaining} more approval{}.",
            if *remaining == 1 { "" } else { "s" }
        ),
        Some(Progress::NextStage { .. }) => format!(
            "You approved {id}; it moves on to {} ({}).",
            deciders(request, world),
            request.stage_summary()
        ),
        Some(Progress::Approved) | None => {
            format!("You approved {id}; every stage is done and the access is being set up.")
        }
    }
}

/// `prod-db/read for 2h`.
pub fn asked(request: &AccessRequest) -> String {
    match request.duration {
        Some(duration) => format!("{}/{} for {duration}", request.resource, request.role),
        None => format!("{}/{} (standing)", request.resource, request.role),
    }
}

/// The sentence with its first word capitalised, unless that word is an id as it is
/// written (`payments/approver allows at most 8h`): only plain lowercase words change.
fn capitalised(sentence: &str) -> String {
    let first_word = sentence
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches([',', ';', ':']);
    if !first_word
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '\'')
    {
        return sentence.to_owned();
    }
    let mut chars = sentence.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Short enough to read out, unique enough to find in the log: 32 random bits (each
/// `RandomState` has fresh keys; the counter makes two in a row differ even without them).
fn reference() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let bits = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:08x}", bits as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_reads_as_a_sentence() {
        assert_eq!(capitalised("you are not"), "You are not");
        assert_eq!(capitalised("there's no"), "There's no");
    }

    #[test]
    fn a_sentence_that_starts_with_an_id_keeps_the_id_as_written() {
        assert_eq!(
            capitalised("payments/approver allows at most 8h; ask for 8h or less"),
            "payments/approver allows at most 8h; ask for 8h or less"
        );
        assert_eq!(
            capitalised("`payments` has no role `admin`"),
            "`payments` has no role `admin`"
        );
        assert_eq!(capitalised("prod-db is gone"), "prod-db is gone");
    }
}
