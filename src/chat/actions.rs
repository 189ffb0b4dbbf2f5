//! What the buttons on cards mean, shared by Slack and Discord. A button carries only an
//! action and the ids it is about: who clicked is re-checked against the store on every
//! click, so a forged or stale button can ask, never decide. The strings here are part of
//! posted messages and must keep parsing for as long as old cards can be clicked.

use crate::domain::ids::{CampaignId, GrantId, RequestId};

/// A click on a card's button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardAction {
    Approve(RequestId),
    /// Opens the reject modal, which asks for a reason.
    Reject(RequestId),
    /// Opens the changes modal: a shorter duration or a lesser role.
    ApproveWithChanges(RequestId),
    Keep {
        campaign: CampaignId,
        grant: GrantId,
    },
    Revoke {
        campaign: CampaignId,
        grant: GrantId,
    },
    /// The post-hoc review of emergency access says it was fine.
    Confirm(GrantId),
    /// The post-hoc review of emergency access says it was not.
    Flag(GrantId),
    /// The holder gives the access back now.
    EndNow(GrantId),
    /// The holder asks for more time.
    Extend(GrantId),
    Cancel(RequestId),
}

/// Ids of the modals (Slack `callback_id`) and of their inputs (`action_id`), which the
/// templates under templates/slack/ use and the adapters read back.
pub mod inputs {
    pub const REQUEST_MODAL: &str = "gatehouse.request";
    pub const REJECT_MODAL: &str = "gatehouse.reject";
    pub const CHANGES_MODAL: &str = "gatehouse.changes";
    /// Asks how much longer a grant should last; private_metadata is the grant id.
    pub const EXTEND_MODAL: &str = "gatehouse.extend";
    /// The resource typeahead; Slack asks the options endpoint with this action id.
    pub const RESOURCE: &str = "request.resource";
    /// Choosing a role dispatches an action, so the modal can show the role's fields.
    pub const ROLE: &str = "request.role";
    pub const DURATION: &str = "request.duration";
    pub const JUSTIFICATION: &str = "request.justification";
    /// Followed by the template field's id: `request.field.ticket`.
    pub const FIELD_PREFIX: &str = "request.field.";
    pub const REJECT_REASON: &str = "reject.reason";
    pub const CHANGES_DURATION: &str = "changes.duration";
    pub const CHANGES_ROLE: &str = "changes.role";
    pub const CHANGES_REASON: &str = "changes.reason";
    pub const EXTEND_DURATION: &str = "extend.duration";
    pub const EXTEND_REASON: &str = "extend.reason";
}

impl CardAction {
    pub fn action_id(&self) -> &'static str {
        match self {
            CardAction::Approve(_) => "gatehouse.approve",
            CardAction::Reject(_) => "gatehouse.reject",
            CardAction::ApproveWithChanges(_) => "gatehouse.approve_with_changes",
            CardAction::Keep { .. } => "gatehouse.keep",
            CardAction::Revoke { .. } => "gatehouse.revoke",
            CardAction::Confirm(_) => "gatehouse.confirm",
            CardAction::Flag(_) => "gatehouse.flag",
            CardAction::EndNow(_) => "gatehouse.end_now",
            CardAction::Extend(_) => "gatehouse.extend",
            CardAction::Cancel(_) => "gatehouse.cancel",
        }
    }

    /// The ids the button carries: `AR-12`, `G-7`, or `RC-3:G-7` for a review item.
    pub fn value(&self) -> String {
        match self {
            CardAction::Approve(r)
            | CardAction::Reject(r)
            | CardAction::ApproveWithChanges(r)
            | CardAction::Cancel(r) => r.to_string(),
            CardAction::Keep { campaign, grant } | CardAction::Revoke { campaign, grant } => {
                format!("{campaign}:{grant}")
            }
            CardAction::Confirm(g)
            | CardAction::Flag(g)
            | CardAction::EndNow(g)
            | CardAction::Extend(g) => g.to_string(),
        }
    }

    /// Reads a click back; `None` for anything Gatehouse did not post.
    pub fn parse(action_id: &str, value: &str) -> Option<CardAction> {
        let request = || value.parse::<RequestId>().ok();
        let grant = || value.parse::<GrantId>().ok();
        let item = || {
            let (campaign, grant) = value.split_once(':')?;
            Some((campaign.parse().ok()?, grant.parse().ok()?))
        };
        Some(match action_id {
            "gatehouse.approve" => CardAction::Approve(request()?),
            "gatehouse.reject" => CardAction::Reject(request()?),
            "gatehouse.approve_with_changes" => CardAction::ApproveWithChanges(request()?),
            "gatehouse.cancel" => CardAction::Cancel(request()?),
            "gatehouse.keep" => {
                let (campaign, grant) = item()?;
                CardAction::Keep { campaign, grant }
            }
            "gatehouse.revoke" => {
                let (campaign, grant) = item()?;
                CardAction::Revoke { campaign, grant }
            }
            "gatehouse.confirm" => CardAction::Confirm(grant()?),
            "gatehouse.flag" => CardAction::Flag(grant()?),
            "gatehouse.end_now" => CardAction::EndNow(grant()?),
            "gatehouse.extend" => CardAction::Extend(grant()?),
            _ => return None,
        })
    }

    /// One string for platforms whose buttons carry a single id (Discord's `custom_id`,
    /// at most 100 characters): `gatehouse.keep|RC-3:G-7`.
    pub fn custom_id(&self) -> String {
        format!("{}|{}", self.action_id(), self.value())
    }

    pub fn from_custom_id(custom_id: &str) -> Option<CardAction> {
        let (action_id, value) = custom_id.split_once('|')?;
        CardAction::parse(action_id, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_action() -> Vec<CardAction> {
        let (r, g, c) = (RequestId(12), GrantId(7), CampaignId(3));
        vec![
            CardAction::Approve(r),
            CardAction::Reject(r),
            CardAction::ApproveWithChanges(r),
            CardAction::Keep {
                campaign: c,
                grant: g,
            },
            CardAction::Revoke {
                campaign: c,
                grant: g,
            },
            CardAction::Confirm(g),
            CardAction::Flag(g),
            CardAction::EndNow(g),
            CardAction::Extend(g),
            CardAction::Cancel(r),
        ]
    }

    #[test]
    fn every_action_reads_back_from_its_action_id_and_value() {
        for action in every_action() {
            assert_eq!(
                CardAction::parse(action.action_id(), &action.value()),
                Some(action)
            );
            assert_eq!(
                CardAction::from_custom_id(&action.custom_id()),
                Some(action)
            );
            assert!(action.custom_id().len() <= 100, "Discord's custom_id limit");
        }
    }

    #[test]
    fn buttons_carry_only_ids() {
        assert_eq!(CardAction::Approve(RequestId(12)).value(), "AR-12");
        let keep = CardAction::Keep {
            campaign: CampaignId(3),
            grant: GrantId(7),
        };
        assert_eq!(keep.value(), "RC-3:G-7");
        assert_eq!(keep.action_id(), "gatehouse.keep");
    }

    #[test]
    fn a_value_of_the_wrong_kind_or_an_unknown_action_is_not_a_click() {
        assert_eq!(CardAction::parse("gatehouse.approve", "G-7"), None);
        assert_eq!(CardAction::parse("gatehouse.keep", "G-7"), None);
        assert_eq!(CardAction::parse("gatehouse.keep", "RC-3:AR-7"), None);
        assert_eq!(CardAction::parse("gatehouse.sudo", "AR-12"), None);
        assert_eq!(CardAction::parse(inputs::ROLE, "admin"), None);
        assert_eq!(CardAction::from_custom_id("gatehouse.approve"), None);
    }
}
