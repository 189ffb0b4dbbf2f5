//! Queries: what front ends show. Each reads in one trip, by index (its cost grows with
//! what it returns), and answers with domain records, never with store types.

use chrono::{DateTime, Utc};

use super::{Facade, on_blocking_pool};
use crate::domain::anchor::{AnchorReport, ChainHead, PublishedHead};
use crate::domain::audit::AuditRecord;
use crate::domain::card::{CardKey, PostedCard};
use crate::domain::grant::Grant;
use crate::domain::ids::{CampaignId, GrantId, PersonId, RequestId};
use crate::domain::request::AccessRequest;
use crate::domain::review::Campaign;
use crate::engine::delivery::Claim;
use crate::engine::{Engine, EngineError};
use crate::metrics::StoreGauges;
use crate::store::backup::{BackupError, Spooled};

/// A person's side of Gatehouse: their requests and grants, newest first, and the
/// requests they may decide now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overview {
    pub requests: Vec<AccessRequest>,
    pub grants: Vec<Grant>,
    pub to_decide: Vec<AccessRequest>,
}

/// Records to read together, in one trip: what a card, a notice or a page shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lookup {
    pub request: Option<RequestId>,
    pub grant: Option<GrantId>,
    /// Also the request `grant` came from, when `request` names none.
    pub request_of_grant: bool,
    pub campaign: Option<CampaignId>,
    /// The messages posted about this, in the order they were posted.
    pub cards: Option<CardKey>,
    /// The audit chain's head, to publish out of band.
    pub chain_head: bool,
}

/// What a [`Lookup`] found; a record that does not exist is `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    pub request: Option<AccessRequest>,
    pub grant: Option<Grant>,
    pub campaign: Option<Campaign>,
    pub cards: Vec<PostedCard>,
    pub chain_head: Option<ChainHead>,
}

impl Facade {
    /// A request by id; `NotFound` when there is none.
    pub async fn request(&self, id: RequestId) -> Result<AccessRequest, EngineError> {
        self.call(move |engine| Ok(engine.load_request(id)?.value))
            .await
    }

    /// A grant by id; `NotFound` when there is none.
    pub async fn grant(&self, id: GrantId) -> Result<Grant, EngineError> {
        self.call(move |engine| Ok(engine.load_grant(id)?.value))
            .await
    }

    /// Requests newest first, at most `limit`; only pending ones when `pending_only`.
    pub async fn requests(
        &self,
        pending_only: bool,
        limit: usize,
    ) -> Result<Vec<AccessRequest>, EngineError> {
        self.call(move |engine| Ok(engine.store.requests(pending_only, limit)?))
            .await
    }

    /// Grants newest first, at most `limit`; only live ones when `live_only`.
    pub async fn grants(&self, live_only: bool, limit: usize) -> Result<Vec<Grant>, EngineError> {
        self.call(move |engine| Ok(engine.store.grants(live_only, limit)?))
            .await
    }

    /// `person`'s requests and grants, and what they may decide now.
    pub async fn overview(&self, person: PersonId) -> Result<Overview, EngineError> {
        self.call(move |engine| {
            Ok(Overview {
                requests: engine.store.requests_of(&person)?,
                grants: engine.store.grants_of(&person)?,
                to_decide: engine.to_decide(&person)?,
            })
        })
        .await
    }

    /// The pending requests whose current stage `person` may decide now, newest first,
    /// however many requests are pending.
    pub async fn to_decide(&self, person: PersonId) -> Result<Vec<AccessRequest>, EngineError> {
        self.call(move |engine| engine.to_decide(&person)).await
    }

    /// Request `id`, if `person` may decide its current stage now (to open the reject or
    /// changes form); else why not, as the decision itself would say.
    pub async fn request_to_decide(
        &self,
        person: PersonId,
        id: RequestId,
    ) -> Result<AccessRequest, EngineError> {
        self.call(move |engine| {
            let request = engine.load_request(id)?.value;
            let distinct = engine.world().defaults().distinct_approvers;
            request.check_decider(&person, distinct)?;
            Ok(request)
        })
        .await
    }

    /// Grant `id`, if `person` may ask for more time on it now (to open the extend form).
    pub async fn grant_to_extend(
        &self,
        person: PersonId,
        id: GrantId,
    ) -> Result<Grant, EngineError> {
        self.call(move |engine| {
            let grant = engine.load_grant(id)?.value;
            grant.check_extender(&person)?;
            Ok(grant)
        })
        .await
    }

    /// The records `lookup` names, read together.
    pub async fn records(&self, lookup: Lookup) -> Result<Records, EngineError> {
        self.call(move |engine| {
            let store = &engine.store;
            let grant = match lookup.grant {
                Some(id) => store.grant(id)?.map(|g| g.value),
                None => None,
            };
            let request = match (lookup.request, &grant) {
                (Some(id), _) => Some(id),
                (None, Some(grant)) if lookup.request_of_grant => Some(grant.request),
                (None, _) => None,
            };
            Ok(Records {
                request: match request {
                    Some(id) => store.request(id)?.map(|r| r.value),
                    None => None,
                },
                grant,
                campaign: match lookup.campaign {
                    Some(id) => store.campaign(id)?.map(|c| c.value),
                    None => None,
                },
                cards: match &lookup.cards {
                    Some(about) => store.cards(about)?,
                    None => Vec::new(),
                },
                chain_head: match lookup.chain_head {
                    true => store.chain_head()?,
                    false => None,
                },
            })
        })
        .await
    }

    /// Claims one platform delivery (a Slack request or retry, a Discord interaction) by
    /// its ids, each remembered until `until`: a facade for handling it when none of them
    /// was seen before, `None` for a repeat (recorded, or being handled now). The ids are
    /// recorded with the first commit the returned facade's calls make, in the same
    /// transaction as the work; when its work commits nothing, on their own once the last
    /// clone of it is dropped, unless that work failed on our side (the store, a bug): then
    /// a retry does the work. A later replay matches on any of the ids.
    pub async fn first_delivery(
        &self,
        keys: Vec<String>,
        until: DateTime<Utc>,
    ) -> Result<Option<Facade>, EngineError> {
        let (claim, first) = Claim::take(self.engine.clone(), &self.in_flight, keys, until);
        if !first {
            // A repeat of a delivery being handled now: its other ids are recorded when the
            // claim is let go, so that a later replay matches on any of them.
            return Ok(None);
        }
        let keys: Vec<String> = claim.entries().into_iter().map(|(key, _)| key).collect();
        let seen = self
            .call(move |engine| Ok(engine.store.any_delivered(&keys)?))
            .await;
        match seen {
            Ok(false) => Ok(Some(Facade {
                delivery: Some(claim),
                ..self.clone()
            })),
            // A repeat: its ids are recorded when the claim is let go, so that a later
            // replay matches on any of them.
            Ok(true) => Ok(None),
            Err(e) => {
                claim.failed();
                Err(e)
            }
        }
    }

    /// Takes `key` in the store's table of keys seen once, until `until`: true for the one
    /// caller, on any replica, that takes it first. For limits and one-time tokens with no
    /// work of their own (the portal's sign-in slots and callbacks); a platform delivery
    /// uses [`Facade::first_delivery`], whose ids land with its work.
    pub async fn take_once(&self, key: String, until: DateTime<Utc>) -> Result<bool, EngineError> {
        self.call(move |engine| Ok(engine.store.first_delivery(&key, until)?))
            .await
    }

    /// Audit records from sequence `from` (1 is the first), in order, at most `limit`.
    pub async fn audit(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>, EngineError> {
        self.call(move |engine| Ok(engine.store.audit(from, limit)?))
            .await
    }

    /// Walks the whole audit chain with its checkpoints, and checks that it holds every
    /// head in `published`. A chain that is not intact is `Store(StoreError::Chain)`.
    pub async fn verify_audit(
        &self,
        published: Vec<PublishedHead>,
    ) -> Result<AnchorReport, EngineError> {
        self.call(move |engine| Ok(engine.store.verify_audit_against(&published)?))
            .await
    }

    /// A consistent snapshot of everything stored, spooled to a file (see
    /// [`crate::store::backup`]).
    pub async fn backup(&self) -> Result<Spooled, BackupError> {
        let engine = self.engine.clone();
        match on_blocking_pool(move || Ok::<_, EngineError>(engine.store.backup_file())).await {
            Ok(spooled) => spooled,
            Err(failed) => Err(BackupError::Io(std::io::Error::other(failed.to_string()))),
        }
    }

    /// The store's gauges for `/metrics`, read now.
    pub async fn gauges(&self) -> Result<StoreGauges, EngineError> {
        self.call(|engine| Ok(StoreGauges::read(&*engine.store)?))
            .await
    }

    /// Whether the store answers a read (for `/readyz`).
    pub async fn ping_store(&self) -> Result<(), EngineError> {
        self.call(|engine| Ok(engine.store.requests(true, 1).map(drop)?))
            .await
    }
}

impl Engine {
    /// The pending requests whose current stage `person` may decide now, newest first.
    pub(crate) fn to_decide(&self, person: &PersonId) -> Result<Vec<AccessRequest>, EngineError> {
        let distinct = self.world().defaults().distinct_approvers;
        let mut listed = self.store.pending_for_approver(person)?;
        listed.retain(|r| r.check_decider(person, distinct).is_ok());
        Ok(listed)
    }
}
