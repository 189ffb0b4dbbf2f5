//! Which DM channel the bot shares with each user. Slack (`conversations.open`) and Discord
//! (`POST /users/@me/channels`) give the same channel every time a DM with a user is opened,
//! so a transport opens it once and remembers it: one call per message instead of two, and
//! no Tier 3 `conversations.open` limit to run into when many people get DMs at once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};

/// More users than any directory Gatehouse serves; past it the memory starts afresh.
const REMEMBERED: usize = 100_000;

/// User id → their DM channel with the bot.
#[derive(Debug, Default)]
pub struct DmChannels {
    known: Mutex<HashMap<String, String>>,
}

impl DmChannels {
    /// The DM channel with `user`: the one remembered, or the one `open` gives (then
    /// remembered; a failure is not).
    pub async fn get_or_open<E, F>(&self, user: &str, open: F) -> Result<String, E>
    where
        F: Future<Output = Result<String, E>>,
    {
        if let Some(channel) = self.lock().get(user) {
            return Ok(channel.clone());
        }
        let channel = open.await?;
        let mut known = self.lock();
        if known.len() >= REMEMBERED {
            known.clear();
        }
        known.insert(user.to_owned(), channel.clone());
        Ok(channel)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_channel_is_opened_once_per_user_and_a_failure_is_not_remembered() {
        let channels = DmChannels::default();
        let open = |channel: &'static str| async move { Ok::<_, &str>(channel.to_owned()) };
        assert_eq!(
            channels.get_or_open("U1", open("D1")).await,
            Ok("D1".into())
        );
        // Remembered: a second open (which would give D9) is never awaited.
        assert_eq!(
            channels.get_or_open("U1", open("D9")).await,
            Ok("D1".into())
        );
        assert_eq!(
            channels.get_or_open("U2", open("D2")).await,
            Ok("D2".into())
        );
        let failed: Result<String, &str> = channels.get_or_open("U3", async { Err("down") }).await;
        assert_eq!(failed, Err("down"));
        assert_eq!(
            channels.get_or_open("U3", open("D3")).await,
            Ok("D3".into())
        );
        assert_eq!(channels.lock().len(), 3);
    }
}
