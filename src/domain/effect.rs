//! Effects: what must happen outside Gatehouse after a state change commits — cards to post
//! or update, people to tell, alerts to raise, access to provision or take back. They are
//! stored in the outbox in the same transaction as the change, and executed after it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::audit::AuditEvent;
use super::card::CardKey;
use super::ids::{CampaignId, GrantId, PersonId, RequestId};
use super::request::Change;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Post an approval card for the request's current stage to one approver.
    ApprovalCard {
        request: RequestId,
        approver: PersonId,
        stage: usize,
    },
    /// Update every posted card of the request to show its outcome.
    RefreshCards { request: RequestId },
    /// Tell a person something, by DM.
    Notify { to: PersonId, notice: Notice },
    /// Raise a real-time alert in the security channel.
    Alert { alert: Alert },
    /// Give the access of a grant through its resource's connector.
    Provision { grant: GrantId },
    /// Ask a reviewer to keep or revoke one grant of an access review.
    ReviewCard {
        campaign: CampaignId,
        grant: GrantId,
        reviewer: PersonId,
    },
    /// Take the access of a grant back through its resource's connector.
    Deprovision { grant: GrantId },
    /// Update every posted review card of one grant in a campaign to show its decision.
    RefreshReviewCards {
        campaign: CampaignId,
        grant: GrantId,
    },
    /// Update every posted message with buttons about a grant (expiry warning, emergency
    /// review) once its review is done or the grant has ended.
    RefreshGrantCards { grant: GrantId },
}

/// What a person is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    Submitted {
        request: RequestId,
    },
    /// An approver changed what was asked (shorter, or a lesser role); the request goes on.
    Changed {
        request: RequestId,
        change: Change,
    },
    Approved {
        request: RequestId,
        grant: GrantId,
    },
    Rejected {
        request: RequestId,
        by: PersonId,
        reason: String,
    },
    Cancelled {
        request: RequestId,
    },
    Expired {
        request: RequestId,
    },
    Revoked {
        grant: GrantId,
        reason: String,
    },
    Extended {
        grant: GrantId,
        expires_at: Option<DateTime<Utc>>,
        /// The extension request that was approved (none in notices queued before it was
        /// recorded here).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<RequestId>,
    },
    EmergencyReview {
        grant: GrantId,
    },
    /// The access could not be given; the request is over.
    ProvisioningFailed {
        grant: GrantId,
        error: String,
    },
    /// An approver has not decided yet.
    ApprovalReminder {
        request: RequestId,
    },
    /// Access ends soon; the grantee may extend it.
    ExpiryWarning {
        grant: GrantId,
        expires_at: DateTime<Utc>,
    },
}

/// What the security channel is told.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "alert", rename_all = "snake_case")]
pub enum Alert {
    EmergencyGranted {
        grant: GrantId,
    },
    PrivilegedGranted {
        grant: GrantId,
    },
    SodBlocked {
        person: PersonId,
        rule: String,
        request: String,
    },
    ProvisioningFailed {
        grant: GrantId,
        error: String,
    },
    RevocationFailed {
        grant: GrantId,
        error: String,
    },
    EmergencyFlagged {
        grant: GrantId,
        by: PersonId,
    },
    /// The daily summary.
    Digest {
        pending_requests: usize,
        live_grants: usize,
        emergency_unreviewed: usize,
        revocations_failing: usize,
    },
    PersonOffboarded {
        person: PersonId,
        grants: usize,
    },
    /// An admin token acted as someone other than its own operator (its `impersonate`
    /// power): what it did, as whom, and on which request or grant.
    Impersonation {
        token: String,
        person: PersonId,
        /// The audit action's name: `stage_approved`, `request_submitted`, …
        action: String,
        request: Option<RequestId>,
        grant: Option<GrantId>,
    },
    /// A directory read was not applied: it would make too many people leavers at once.
    DirectorySyncHeld {
        leavers: usize,
        /// What was held and what to do, as the log says it.
        message: String,
    },
    /// A directory read that the policy does not pass was put in force under the policy
    /// already in force, so that leavers lose their access; the policy needs a fix.
    DirectoryOutOfPolicy {
        problems: Vec<String>,
    },
}

impl Alert {
    /// The alert a change whose audit `events` are these must raise because a token
    /// impersonated someone: one per change, naming its first impersonated event.
    pub fn impersonation(events: &[AuditEvent]) -> Option<Alert> {
        let event = events
            .iter()
            .find(|e| e.actor.impersonating_token().is_some())?;
        Some(Alert::Impersonation {
            token: event.actor.impersonating_token()?.to_owned(),
            person: event.actor.person_id()?.clone(),
            action: event.action.name(),
            request: events.iter().find_map(|e| e.request),
            grant: events.iter().find_map(|e| e.grant),
        })
    }
}

/// Effects that must happen one after the other. Effects of different lanes are independent
/// and may run at once; within a lane they run in the order they were queued.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Everything that posts or updates the messages recorded under one key: a refresh
    /// running beside a post could miss the card being posted and leave it stale.
    Cards(CardKey),
    /// The connector calls of one grant: a revocation never overtakes its provisioning.
    Access(GrantId),
    /// DMs to one person that are recorded nowhere, so that they read in order.
    Person(PersonId),
    /// The security channel's alerts, in order.
    Security,
}

/// What an effect is, for the capacity it uses and how soon it goes: chat messages and
/// connector calls never share capacity (a slow target must not delay a card or an alert),
/// and within each, the more urgent kind goes first. The order of the variants is that
/// urgency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// A real-time alert in the security channel: ahead of every other message.
    Alert,
    /// A card, a refresh of cards, a DM.
    Chat,
    /// Access taken back through a connector: ahead of grants, since access held past its
    /// end is the risk.
    Revoke,
    /// Access given through a connector.
    Grant,
}

impl Class {
    /// Whether effects of this class are chat messages (else connector calls).
    pub fn is_chat(self) -> bool {
        matches!(self, Class::Alert | Class::Chat)
    }
}

impl Notice {
    /// The messages this notice's DM is recorded with, when it carries buttons that must
    /// stop working later: an expiry warning's Extend and an emergency review's Keep/Revoke
    /// close with the grant; a submission's Cancel and a reminder's Approve/Reject close
    /// with the request's cards.
    pub fn card(&self) -> Option<CardKey> {
        match self {
            Notice::ExpiryWarning { grant, .. } | Notice::EmergencyReview { grant } => {
                Some(CardKey::Grant { grant: *grant })
            }
            Notice::Submitted { request } | Notice::ApprovalReminder { request } => {
                Some(CardKey::Request { request: *request })
            }
            _ => None,
        }
    }
}

impl Effect {
    /// The lane this effect runs in.
    pub fn lane(&self) -> Lane {
        match self {
            Effect::ApprovalCard { request, .. } | Effect::RefreshCards { request } => {
                Lane::Cards(CardKey::Request { request: *request })
            }
            Effect::ReviewCard {
                campaign, grant, ..
            }
            | Effect::RefreshReviewCards { campaign, grant } => Lane::Cards(CardKey::Review {
                campaign: *campaign,
                grant: *grant,
            }),
            Effect::RefreshGrantCards { grant } => Lane::Cards(CardKey::Grant { grant: *grant }),
            Effect::Notify { to, notice } => match notice.card() {
                Some(key) => Lane::Cards(key),
                None => Lane::Person(to.clone()),
            },
            Effect::Alert { .. } => Lane::Security,
            Effect::Provision { grant } | Effect::Deprovision { grant } => Lane::Access(*grant),
        }
    }

    /// Its class: which capacity it uses and how soon it goes ([`Class`]).
    pub fn class(&self) -> Class {
        match self {
            Effect::Alert { .. } => Class::Alert,
            Effect::Deprovision { .. } => Class::Revoke,
            Effect::Provision { .. } => Class::Grant,
            Effect::ApprovalCard { .. }
            | Effect::RefreshCards { .. }
            | Effect::Notify { .. }
            | Effect::ReviewCard { .. }
            | Effect::RefreshReviewCards { .. }
            | Effect::RefreshGrantCards { .. } => Class::Chat,
        }
    }

    /// Whether this effect must happen once however often it is queued (a card per
    /// approver and stage, one provisioning per grant, a review card per reviewer): its
    /// idempotency key does not depend on its seq. Other effects happen each time they are
    /// queued; their key embeds the seq, so no other entry can have it.
    pub fn once_per_key(&self) -> bool {
        matches!(
            self,
            Effect::ApprovalCard { .. } | Effect::Provision { .. } | Effect::ReviewCard { .. }
        )
    }

    /// A key that names this effect uniquely, so that a retry never repeats it.
    pub fn idempotency_key(&self, seq: u64) -> String {
        match self {
            Effect::ApprovalCard {
                request,
                approver,
                stage,
            } => format!("card:{request}:{stage}:{approver}"),
            Effect::Provision { grant } => format!("provision:{grant}"),
            Effect::ReviewCard {
                campaign,
                grant,
                reviewer,
            } => format!("review:{campaign}:{grant}:{reviewer}"),
            Effect::Deprovision { grant } => format!("deprovision:{grant}:{seq}"),
            Effect::RefreshReviewCards { campaign, grant } => {
                format!("refresh-review:{campaign}:{grant}:{seq}")
            }
            Effect::RefreshGrantCards { grant } => format!("refresh-grant:{grant}:{seq}"),
            _ => format!("effect:{seq}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{Actor, AuditAction};

    #[test]
    fn a_change_made_by_impersonation_raises_one_alert_naming_token_person_and_action() {
        let at = chrono::DateTime::<Utc>::UNIX_EPOCH;
        let as_bob = |impersonated| Actor::Operator {
            token: "ops".into(),
            for_person: "bob".into(),
            impersonated,
        };
        let approval = |actor: Actor| {
            vec![
                AuditEvent::new(
                    at,
                    actor.clone(),
                    AuditAction::StageApproved {
                        stage: "Manager".into(),
                        remaining: 0,
                    },
                )
                .request(RequestId(4)),
                AuditEvent::new(at, actor, AuditAction::RequestApproved).request(RequestId(4)),
            ]
        };
        assert_eq!(
            Alert::impersonation(&approval(as_bob(true))),
            Some(Alert::Impersonation {
                token: "ops".into(),
                person: "bob".into(),
                action: "stage_approved".into(),
                request: Some(RequestId(4)),
                grant: None,
            })
        );
        assert_eq!(Alert::impersonation(&approval(as_bob(false))), None);
        assert_eq!(
            Alert::impersonation(&approval(Actor::person(&"bob".into()))),
            None
        );
    }

    #[test]
    fn alerts_go_before_other_messages_and_revocations_before_grants() {
        let grant = GrantId(7);
        let alert = Effect::Alert {
            alert: Alert::EmergencyGranted { grant },
        };
        let card = Effect::ApprovalCard {
            request: RequestId(1),
            approver: PersonId::new("bob"),
            stage: 0,
        };
        let revoke = Effect::Deprovision { grant };
        let provision = Effect::Provision { grant };
        assert!(alert.class() < card.class());
        assert!(revoke.class() < provision.class());
        assert!(alert.class().is_chat() && card.class().is_chat());
        assert!(!revoke.class().is_chat() && !provision.class().is_chat());
    }

    #[test]
    fn every_effect_in_a_lane_of_connector_calls_is_a_connector_call_and_no_other_is() {
        let grant = GrantId(7);
        let person = PersonId::new("ann");
        let every_kind = [
            Effect::ApprovalCard {
                request: RequestId(1),
                approver: person.clone(),
                stage: 0,
            },
            Effect::RefreshCards {
                request: RequestId(1),
            },
            Effect::Notify {
                to: person.clone(),
                notice: Notice::Revoked {
                    grant,
                    reason: "expired".into(),
                },
            },
            Effect::Notify {
                to: person.clone(),
                notice: Notice::ExpiryWarning {
                    grant,
                    expires_at: chrono::DateTime::<Utc>::UNIX_EPOCH,
                },
            },
            Effect::Alert {
                alert: Alert::EmergencyGranted { grant },
            },
            Effect::Provision { grant },
            Effect::ReviewCard {
                campaign: CampaignId(1),
                grant,
                reviewer: person,
            },
            Effect::Deprovision { grant },
            Effect::RefreshReviewCards {
                campaign: CampaignId(1),
                grant,
            },
            Effect::RefreshGrantCards { grant },
        ];
        // A lane runs one effect at a time: one that mixed chat and connector calls would
        // let a slow connector hold up a message.
        for effect in every_kind {
            let access = matches!(effect.lane(), Lane::Access(_));
            assert_eq!(access, !effect.class().is_chat(), "{effect:?}");
        }
    }

    #[test]
    fn an_effect_is_once_per_key_exactly_when_its_key_does_not_depend_on_its_seq() {
        let grant = GrantId(7);
        let person = PersonId::new("ann");
        let every_kind = [
            Effect::ApprovalCard {
                request: RequestId(1),
                approver: person.clone(),
                stage: 0,
            },
            Effect::RefreshCards {
                request: RequestId(1),
            },
            Effect::Notify {
                to: person.clone(),
                notice: Notice::Submitted {
                    request: RequestId(1),
                },
            },
            Effect::Alert {
                alert: Alert::EmergencyGranted { grant },
            },
            Effect::Provision { grant },
            Effect::ReviewCard {
                campaign: CampaignId(1),
                grant,
                reviewer: person,
            },
            Effect::Deprovision { grant },
            Effect::RefreshReviewCards {
                campaign: CampaignId(1),
                grant,
            },
            Effect::RefreshGrantCards { grant },
        ];
        for effect in every_kind {
            let same = effect.idempotency_key(1) == effect.idempotency_key(2);
            assert_eq!(effect.once_per_key(), same, "{effect:?}");
        }
    }
}
