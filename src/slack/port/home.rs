//! The App Home tab: a person's requests, live grants and the approvals waiting for them,
//! published when they open it.

use serde_json::json;

use super::SlackChat;
use crate::chat::deliver::read_error;
use crate::chat::views::HomeView;
use crate::domain::grant::Grant;
use crate::domain::ids::PersonId;
use crate::outbox::ChatError;

const HOME: &str = "slack/app_home.j2";
/// How many of a person's requests and pending approvals App Home lists.
const HOME_ITEMS: usize = 50;

impl SlackChat {
    /// Publishes `person`'s App Home for `slack_user`: their requests, their live grants
    /// and the approvals waiting for them. Called when they open the tab.
    pub async fn publish_home(&self, slack_user: &str, person: &PersonId) -> Result<(), ChatError> {
        let facade = self.port.facade();
        let world = facade.world();
        let mut overview = facade.overview(person.clone()).await.map_err(read_error)?;
        overview.requests.truncate(HOME_ITEMS);
        overview.grants.retain(Grant::is_live);
        overview.to_decide.truncate(HOME_ITEMS);
        let view = HomeView::new(
            person,
            &overview.requests,
            &overview.grants,
            &overview.to_decide,
            &world.directory,
            &world.policy,
            facade.now(),
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
