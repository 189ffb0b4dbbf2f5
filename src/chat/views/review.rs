//! The view of one grant in an access-review campaign, with its reviewers and, once decided
//! (or once the campaign closed), the sentence saying what became of it.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{GrantView, PersonView, ReviewButtons, TimeView};
use crate::domain::directory::Directory;
use crate::domain::grant::Grant;
use crate::domain::ids::PersonId;
use crate::domain::policy::Policy;
use crate::domain::review::{Campaign, ItemDecision, ReviewItem};

/// One grant of an access-review campaign, as its reviewers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignItemView {
    /// `RC-3`.
    pub campaign: String,
    /// The `[[reviews]]` entry that started it.
    pub review: String,
    pub deadline: TimeView,
    pub grant: GrantView,
    pub reviewers: Vec<PersonView>,
    pub decided: bool,
    /// `Kept by Carol Diaz`, `Revoked: nobody kept it by the deadline`.
    pub outcome: Option<String>,
    /// Keep and Revoke, as buttons carry them.
    pub buttons: ReviewButtons,
}

impl CampaignItemView {
    /// `item` is one of `campaign.items`, and `grant` the grant it is about.
    pub fn new(
        campaign: &Campaign,
        item: &ReviewItem,
        grant: &Grant,
        directory: &Directory,
        policy: &Policy,
        now: DateTime<Utc>,
    ) -> Self {
        let name = |id: &PersonId| PersonView::new(id, directory).name;
        let outcome = item.decision.as_ref().map(|d| match d {
            ItemDecision::Kept { by: Some(by), .. } => format!("Kept by {}", name(by)),
            ItemDecision::Kept { by: None, .. } => {
                "Kept: nobody decided by the deadline".to_owned()
            }
            ItemDecision::Revoked { by: Some(by), .. } => format!("Revoked by {}", name(by)),
            ItemDecision::Revoked { by: None, .. } => {
                "Revoked: nobody kept it by the deadline".to_owned()
            }
        });
        CampaignItemView {
            campaign: campaign.id.to_string(),
            review: campaign.review.clone(),
            deadline: TimeView::new(campaign.deadline),
            grant: GrantView::new(grant, directory, policy, now),
            reviewers: item
                .reviewers
                .iter()
                .map(|p| PersonView::new(p, directory))
                .collect(),
            decided: outcome.is_some() || !campaign.is_open(),
            buttons: ReviewButtons::new(campaign.id, grant.id),
            outcome,
        }
    }
}
