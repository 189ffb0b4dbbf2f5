//! The tracing span an outbox delivery runs in: the effect's key and kind, and the request
//! it is about, so that every line a delivery causes (the connector's, the chat adapter's)
//! can be found with `request=AR-12`. Effects about a grant learn their request when the
//! grant is loaded.

use tracing::field::Empty;

use crate::domain::effect::{Effect, Notice};
use crate::domain::ids::RequestId;
use crate::store::OutboxEntry;

/// The span of one attempt at `entry`.
pub(super) fn delivery_span(entry: &OutboxEntry) -> tracing::Span {
    let span = tracing::info_span!(
        "deliver",
        effect = kind(&entry.effect),
        key = %entry.key,
        request = Empty,
        grant = Empty,
    );
    if let Some(request) = request_of(&entry.effect) {
        span.record("request", tracing::field::display(request));
    }
    if let Some(grant) = grant_of(&entry.effect) {
        span.record("grant", tracing::field::display(grant));
    }
    span
}

/// The effect's kind, as its `effect` tag is spelled in the outbox.
pub fn kind(effect: &Effect) -> &'static str {
    match effect {
        Effect::ApprovalCard { .. } => "approval_card",
        Effect::RefreshCards { .. } => "refresh_cards",
        Effect::Notify { .. } => "notify",
        Effect::Alert { .. } => "alert",
        Effect::Provision { .. } => "provision",
        Effect::ReviewCard { .. } => "review_card",
        Effect::Deprovision { .. } => "deprovision",
        Effect::RefreshReviewCards { .. } => "refresh_review_cards",
        Effect::RefreshGrantCards { .. } => "refresh_grant_cards",
    }
}

fn request_of(effect: &Effect) -> Option<RequestId> {
    match effect {
        Effect::ApprovalCard { request, .. }
        | Effect::RefreshCards { request }
        | Effect::Notify {
            notice:
                Notice::Submitted { request }
                | Notice::Changed { request, .. }
                | Notice::Approved { request, .. }
                | Notice::Rejected { request, .. }
                | Notice::Cancelled { request }
                | Notice::Expired { request }
                | Notice::ApprovalReminder { request },
            ..
        } => Some(*request),
        _ => None,
    }
}

fn grant_of(effect: &Effect) -> Option<crate::domain::ids::GrantId> {
    match effect {
        Effect::Provision { grant }
        | Effect::Deprovision { grant }
        | Effect::ReviewCard { grant, .. }
        | Effect::RefreshReviewCards { grant, .. }
        | Effect::RefreshGrantCards { grant }
        | Effect::Notify {
            notice:
                Notice::Approved { grant, .. }
                | Notice::Revoked { grant, .. }
                | Notice::Extended { grant, .. }
                | Notice::EmergencyReview { grant }
                | Notice::ProvisioningFailed { grant, .. }
                | Notice::ExpiryWarning { grant, .. },
            ..
        } => Some(*grant),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_is_the_effect_tag_of_the_outbox() {
        let effect = Effect::Provision {
            grant: crate::domain::ids::GrantId(7),
        };
        let tagged = serde_json::to_value(&effect).unwrap();
        assert_eq!(tagged["effect"], kind(&effect));
        let effect = Effect::RefreshGrantCards {
            grant: crate::domain::ids::GrantId(7),
        };
        assert_eq!(
            serde_json::to_value(&effect).unwrap()["effect"],
            kind(&effect)
        );
    }
}
