//! Slack users → directory people: by the `slack` id in directory.toml, else by the email
//! Slack has for them (users.info), remembered for a while so a busy approver does not cost
//! a Slack call per click.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use crate::domain::directory::{Directory, Person};
use crate::domain::ids::PersonId;

/// How long an email found through users.info is trusted.
const REMEMBER: Duration = Duration::from_secs(15 * 60);

/// Who a Slack user is to Gatehouse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Person(PersonId),
    /// Not in the directory: the sentence tells them how to get mapped.
    Unknown {
        slack_user: String,
        email: Option<String>,
    },
}

impl Resolved {
    /// What an unknown person is told.
    pub fn unknown_message(slack_user: &str, email: Option<&str>) -> String {
        match email {
            Some(email) => format!(
                "Gatehouse does not know you yet: nobody in the directory has the email {email}. Ask your IAM team to add you, with slack = \"{slack_user}\" in directory.toml."
            ),
            None => format!(
                "Gatehouse does not know you yet. Ask your IAM team to add you to the directory with slack = \"{slack_user}\"."
            ),
        }
    }
}

/// Finds people for Slack users; cheap to share.
pub struct SlackPeople {
    client: super::client::SlackApiClient,
    token: SlackApiToken,
    emails: Mutex<HashMap<String, (Option<String>, Instant)>>,
}

impl SlackPeople {
    pub fn new(client: super::client::SlackApiClient, token: SlackApiToken) -> Self {
        Self {
            client,
            token,
            emails: Mutex::new(HashMap::new()),
        }
    }

    /// The person behind `slack_user`. Only a failed users.info call is an error.
    pub async fn resolve(
        &self,
        directory: &Directory,
        slack_user: &str,
    ) -> Result<Resolved, SlackClientError> {
        if let Some(person) = directory.by_slack(slack_user) {
            return Ok(active(person, slack_user));
        }
        let email = self.email_of(slack_user).await?;
        Ok(match email.as_deref().and_then(|e| directory.by_email(e)) {
            Some(person) => active(person, slack_user),
            None => Resolved::Unknown {
                slack_user: slack_user.to_owned(),
                email,
            },
        })
    }

    async fn email_of(&self, slack_user: &str) -> Result<Option<String>, SlackClientError> {
        if let Some((email, at)) = self.remembered(slack_user)
            && at.elapsed() < REMEMBER
        {
            return Ok(email);
        }
        let session = self.client.open_session(&self.token);
        let request = SlackApiUsersInfoRequest::new(SlackUserId::new(slack_user.to_owned()));
        let email = match session.users_info(&request).await {
            Ok(found) => found.user.profile.and_then(|p| p.email).map(|e| e.0),
            Err(SlackClientError::ApiError(e)) if e.code == "user_not_found" => None,
            Err(e) => return Err(e),
        };
        self.emails
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(slack_user.to_owned(), (email.clone(), Instant::now()));
        Ok(email)
    }

    fn remembered(&self, slack_user: &str) -> Option<(Option<String>, Instant)> {
        self.emails
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(slack_user)
            .cloned()
    }
}

/// A leaver is as unknown as a stranger: they may not act.
fn active(person: &Person, slack_user: &str) -> Resolved {
    if person.active {
        Resolved::Person(person.id.clone())
    } else {
        Resolved::Unknown {
            slack_user: slack_user.to_owned(),
            email: person.email.clone(),
        }
    }
}
