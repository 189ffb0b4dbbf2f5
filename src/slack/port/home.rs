//! The App Home tab: a person's requests, live grants and the approvals waiting for them,
//! published when they open it.

use serde_json::json;

use super::SlackChat;
use crate::chat::deliver::store_error;
use crate::chat::views::HomeView;
use crate::domain::grant::Grant;
use crate::domain::ids::PersonId;
use crate::domain::request::AccessRequest;
use crate::outbox::ChatError;

const HOME: &str = "slack/app_home.j2";
/// How many of a person's requests and pending approvals App Home lists.
const HOME_ITEMS: usize = 50;

impl SlackChat {
    /// Publishes `person`'s App Home for `slack_user`: their requests, their live grants
    /// and the approvals waiting for them. Called when they open the tab.
    pub async fn publish_home(&self, slack_user: &str, person: &PersonId) -> Result<(), ChatError> {
        let engine = self.port.engine();
        let world = engine.world();
        let store = engine.store();
        let mut requests = store.requests_of(person).map_err(store_error)?;
        requests.truncate(HOME_ITEMS);
        let mut grants = store.grants_of(person).map_err(store_error)?;
        grants.retain(Grant::is_live);
        let mut approvals = store.pending_for_approver(person).map_err(store_error)?;
        approvals.retain(|r| waits_for(r, person));
        approvals.truncate(HOME_ITEMS);
        let view = HomeView::new(
            person,
            &requests,
            &grants,
            &approvals,
            &world.directory,
            &world.policy,
            engine.now(),
        );
        let transport = self.port.transport();
        let home = transport
            .slack
            .templates
            .render(HOME, json!({ "home": view }))
            .map_err(|e| ChatError::Permanent(format!("{HOME} could not be rendered: {e}")))?;
        transport.publish(slack_user, HOME, home).await
    }
}

/// Whether `person` can decide the current stage of `request` now.
fn waits_for(request: &AccessRequest, person: &PersonId) -> bool {
    request.is_pending()
        && &request.requester != person
        && request
            .plan
            .stages
            .get(request.current_stage)
            .is_some_and(|s| s.approvers.contains(person) && !s.has_approved(person))
}
