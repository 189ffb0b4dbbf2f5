//! Cards: the interactive messages Gatehouse has posted, remembered so that every card of a
//! request can be updated when it is decided, on whichever platform it went to.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::directory::Platform;
use super::ids::{CampaignId, GrantId, PersonId, RequestId};

/// What a set of cards is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "about", rename_all = "snake_case")]
pub enum CardKey {
    /// The approval cards of a request.
    Request { request: RequestId },
    /// The review cards of one grant in a campaign.
    Review {
        campaign: CampaignId,
        grant: GrantId,
    },
    /// Messages with buttons about a grant (expiry warning, emergency review).
    Grant { grant: GrantId },
}

impl fmt::Display for CardKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardKey::Request { request } => write!(f, "{request}"),
            CardKey::Review { campaign, grant } => write!(f, "{campaign}/{grant}"),
            CardKey::Grant { grant } => write!(f, "{grant}"),
        }
    }
}

/// One posted message: where it is, and whom it was for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostedCard {
    pub platform: Platform,
    /// The channel (Slack DM channel, Discord DM channel) it was posted in.
    pub channel: String,
    /// The platform's id of the message (Slack `ts`, Discord message id).
    pub message: String,
    pub recipient: PersonId,
    /// The outbox key of the effect that posted it, so a retry can tell it was posted.
    pub effect_key: String,
}
