//! Web portal sessions in their own tree, `web_sessions`: key → [`Session`] as JSON. Kept
//! out of `TREE_NAMES`, so out of backups and the journal: a session is no record of
//! Gatehouse's, and a restored backup must not bring back sessions that had ended.

use super::SledStore;
use super::keys::corrupt;
use crate::domain::session::Session;
use crate::store::StoreError;

const WEB_SESSIONS: &str = "web_sessions";

impl SledStore {
    fn sessions_tree(&self) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(WEB_SESSIONS)?)
    }

    pub(super) fn web_session(&self, key: &str) -> Result<Option<Session>, StoreError> {
        match self.sessions_tree()?.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(decode(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    pub(super) fn put_web_session(
        &self,
        key: &str,
        session: &Session,
        flush: bool,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(session).map_err(|source| StoreError::Corrupt {
            what: WEB_SESSIONS.to_owned(),
            source,
        })?;
        let tree = self.sessions_tree()?;
        tree.insert(key.as_bytes(), bytes)?;
        if flush {
            tree.flush()?;
        }
        Ok(())
    }

    pub(super) fn end_web_session(&self, key: &str) -> Result<bool, StoreError> {
        let tree = self.sessions_tree()?;
        let ended = tree.remove(key.as_bytes())?.is_some();
        tree.flush()?;
        Ok(ended)
    }

    pub(super) fn web_sessions(&self) -> Result<Vec<(String, Session)>, StoreError> {
        self.sessions_tree()?
            .iter()
            .map(|item| {
                let (key, value) = item?;
                let session = decode(&key, &value)?;
                Ok((String::from_utf8_lossy(&key).into_owned(), session))
            })
            .collect()
    }
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<Session, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(WEB_SESSIONS, key, &e.to_string()))
}
