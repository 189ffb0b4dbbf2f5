//! Lists a page at a time, for the web portal: a page goes on below the last id the one
//! before it showed, reading the tree from there rather than from its newest end.

use super::SledStore;
use super::keys::{GRANTS, Stored, decode, id_key};
use crate::domain::grant::Grant;
use crate::domain::ids::GrantId;
use crate::store::StoreError;

impl SledStore {
    pub(super) fn grants_page(
        &self,
        before: Option<GrantId>,
        live_only: bool,
        limit: usize,
    ) -> Result<Vec<Grant>, StoreError> {
        let tree = &self.trees.grants;
        let items = match before {
            Some(GrantId(id)) => tree.range(..id_key(id)),
            None => tree.range::<&[u8], _>(..),
        };
        let mut found = Vec::new();
        for item in items.rev() {
            if found.len() >= limit {
                break;
            }
            let (key, bytes) = item?;
            let stored: Stored<Grant> = decode(GRANTS, &key, &bytes)?;
            if !live_only || stored.r.is_live() {
                found.push(stored.r);
            }
        }
        Ok(found)
    }
}
