//! The buttons a card about a request, a grant or a review item can carry, named once so
//! that every platform's template prints the same action: Slack's `action_id` and `value`,
//! and Discord's single `custom_id` (`gatehouse.approve|AR-12`), all from [`CardAction`].

use serde::Serialize;

use crate::chat::actions::CardAction;
use crate::domain::ids::{CampaignId, GrantId, RequestId};

/// One button, as each platform carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ButtonView {
    /// Slack's `action_id`: `gatehouse.approve`.
    pub action_id: &'static str,
    /// Slack's `value`: `AR-12`.
    pub value: String,
    /// Discord's `custom_id`: `gatehouse.approve|AR-12`.
    pub custom_id: String,
}

impl From<CardAction> for ButtonView {
    fn from(action: CardAction) -> Self {
        ButtonView {
            action_id: action.action_id(),
            value: action.value(),
            custom_id: action.custom_id(),
        }
    }
}

/// What can be done to a request from a card: decide it, or (its requester) cancel it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RequestButtons {
    pub approve: ButtonView,
    pub reject: ButtonView,
    pub approve_with_changes: ButtonView,
    pub cancel: ButtonView,
}

/// What can be done to a grant from a card: its holder extends or ends it, a reviewer of
/// emergency access confirms or flags it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GrantButtons {
    pub extend: ButtonView,
    pub end_now: ButtonView,
    pub confirm: ButtonView,
    pub flag: ButtonView,
}

/// What a reviewer of an access-review campaign can do to one of its grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReviewButtons {
    pub keep: ButtonView,
    pub revoke: ButtonView,
}

impl RequestButtons {
    pub fn new(request: RequestId) -> Self {
        RequestButtons {
            approve: CardAction::Approve(request).into(),
            reject: CardAction::Reject(request).into(),
            approve_with_changes: CardAction::ApproveWithChanges(request).into(),
            cancel: CardAction::Cancel(request).into(),
        }
    }
}

impl GrantButtons {
    pub fn new(grant: GrantId) -> Self {
        GrantButtons {
            extend: CardAction::Extend(grant).into(),
            end_now: CardAction::EndNow(grant).into(),
            confirm: CardAction::Confirm(grant).into(),
            flag: CardAction::Flag(grant).into(),
        }
    }
}

impl ReviewButtons {
    pub fn new(campaign: CampaignId, grant: GrantId) -> Self {
        ReviewButtons {
            keep: CardAction::Keep { campaign, grant }.into(),
            revoke: CardAction::Revoke { campaign, grant }.into(),
        }
    }
}
