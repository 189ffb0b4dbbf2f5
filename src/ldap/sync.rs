//! The LDAP directory source: read people (and groups) from LDAP every `sync_every` and put
//! the result in force through the reload path, so that every sync applies joiners, movers
//! and leavers exactly as `gatehouse reload` does. A read that fails — server down, bad
//! credentials, nobody found — changes nothing and says why in the log; the next one tries
//! again. A read that would make more leavers at once than `max_leavers`, or than
//! `max_leavers_percent` of the directory, changes nothing either, and the security channel is
//! told (once for each such read). The groups Gatehouse's `ldap` connectors manage are not
//! read as directory groups.

use std::sync::{Arc, RwLock};
use std::time::Duration as StdDuration;

use ldap3::Scope;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use tokio::sync::watch;

use super::client::{LdapFailure, LdapServer};
use super::people::{Entry, ManagedGroups, Mapped, directory_from_entries, keep_leavers};
use crate::config::{Config, ConnectorKind, DirectoryConfig};
use crate::domain::directory::Directory;
use crate::domain::jml::{self, LeaverLimits, MassLeaving};
use crate::http::{ApiState, ReloadError};

const PAGE_SIZE: i32 = 500;

/// What the directory sync follows: `[directory]`, and the groups the `ldap` connectors
/// manage, which it leaves out. A reload that changes either sends the new settings.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SyncSettings {
    pub directory: DirectoryConfig,
    pub managed: ManagedGroups,
}

impl SyncSettings {
    pub fn from_config(config: &Config) -> Self {
        let managed = config
            .connectors
            .iter()
            .filter(|c| c.kind == ConnectorKind::Ldap)
            .flat_map(|c| c.roles.values());
        Self {
            directory: config.directory.clone(),
            managed: ManagedGroups::new(managed),
        }
    }
}

/// Reads the directory from LDAP.
#[derive(Clone, Debug)]
pub struct LdapDirectory {
    server: LdapServer,
    config: DirectoryConfig,
    managed: ManagedGroups,
}

/// Why a sync changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading the directory from LDAP failed: {0}")]
    Read(#[from] LdapFailure),
    #[error("{0}")]
    Mapping(#[from] super::people::MappingError),
    #[error("putting the directory read from LDAP in force failed: {0}")]
    Engine(String),
    #[error("{0}")]
    MassLeaving(MassLeaving),
}

impl LdapDirectory {
    /// `None` when `[directory]` does not say `source = "ldap"` with a url and a base_dn
    /// (which `gatehouse check` requires).
    pub fn from_config(config: &DirectoryConfig) -> Option<Self> {
        if config.source != crate::config::DirectorySource::Ldap || config.base_dn.is_none() {
            return None;
        }
        Some(Self {
            server: LdapServer {
                url: config.url.clone()?,
                starttls: config.starttls,
                ca: config.ca.clone(),
                bind_dn: config.bind_dn.clone(),
                bind_password: config.bind_password.clone(),
                timeout: config.timeout.to_std(),
            },
            config: config.clone(),
            managed: ManagedGroups::default(),
        })
    }

    /// Leaves the groups in `managed` out of what is read.
    pub fn managing(mut self, managed: ManagedGroups) -> Self {
        self.managed = managed;
        self
    }

    /// The limits a read's leavers must stay within.
    fn limits(&self) -> LeaverLimits {
        LeaverLimits {
            max: self.config.max_leavers,
            max_percent: self.config.max_leavers_percent,
        }
    }

    pub fn every(&self) -> StdDuration {
        self.config.sync_every.to_std()
    }

    /// One read: every person under `base_dn`, and the groups when searched separately.
    pub async fn read(&self) -> Result<Mapped, SyncError> {
        let mut ldap = self.server.connect().await?;
        let a = &self.config.attributes;
        let mut wanted: Vec<&str> = vec![
            &a.id,
            &a.name,
            &a.email,
            &a.manager,
            &a.department,
            &a.title,
            &a.member_of,
        ];
        wanted.extend(a.slack.as_deref());
        wanted.extend(a.discord.as_deref());
        wanted.extend(a.accounts.values().map(String::as_str));
        wanted.extend(self.config.inactive_attribute.as_deref());
        let base = self.config.base_dn.as_deref().unwrap_or_default();
        let mut people = self
            .search(&mut ldap, base, &self.config.filter, wanted)
            .await?;
        let mut groups = match &self.config.group_base_dn {
            Some(group_base) => {
                let mut wanted = vec![a.group_id.as_str()];
                wanted.extend(a.group_members.iter().map(String::as_str));
                let filter = &self.config.group_filter;
                Some(self.search(&mut ldap, group_base, filter, wanted).await?)
            }
            None => None,
        };
        let _ = ldap.unbind().await;
        self.managed
            .leave_out(&mut people, groups.as_mut(), &a.member_of);
        Ok(directory_from_entries(
            &people,
            groups.as_deref(),
            &self.config,
        )?)
    }

    /// A paged subtree search, so that servers' size limits do not cut the result.
    async fn search(
        &self,
        ldap: &mut ldap3::Ldap,
        base: &str,
        filter: &str,
        attributes: Vec<&str>,
    ) -> Result<Vec<Entry>, LdapFailure> {
        let attributes: Vec<String> = attributes.into_iter().map(str::to_owned).collect();
        let what = format!("searching {base} for {filter}");
        let failed = |e| LdapFailure::from_ldap(&what, e);
        let work = async {
            let adapters: Vec<Box<dyn Adapter<'static, String, Vec<String>>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(PAGE_SIZE)),
            ];
            let mut stream = ldap
                .streaming_search_with(adapters, base, Scope::Subtree, filter, attributes)
                .await
                .map_err(failed)?;
            let mut entries = Vec::new();
            while let Some(raw) = stream.next().await.map_err(failed)? {
                let entry = ldap3::SearchEntry::construct(raw);
                entries.push(Entry::new(entry.dn, entry.attrs));
            }
            stream.finish().await.success().map_err(failed)?;
            Ok(entries)
        };
        self.server.within(work, &what).await
    }
}

/// The directory last read from LDAP and put in force, for reloads of the other files:
/// they keep it rather than going back to `files.directory`.
#[derive(Clone, Debug, Default)]
pub struct SyncedDirectory(Arc<RwLock<Option<Directory>>>);

impl SyncedDirectory {
    pub fn get(&self) -> Option<Directory> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, directory: Option<Directory>) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = directory;
    }
}

/// Reads LDAP once and reloads with what was read. On success, what the reload did.
///
/// When the policy no longer checks against the new directory (it names an owner who has
/// left, say), the directory is still put in force, under the policy already in force, and
/// the problems are logged as errors and told to the security channel: leavers must lose
/// their access even while the policy waits for a fix. Reloads keep failing, saying why,
/// until the policy is fixed.
pub async fn sync_once(
    source: &LdapDirectory,
    synced: &SyncedDirectory,
    state: &Arc<ApiState>,
) -> Result<serde_json::Value, SyncError> {
    let mapped = source.read().await?;
    for note in &mapped.notes {
        tracing::warn!("LDAP directory: {note}");
    }
    let in_force = state.facade.world();
    let directory = keep_leavers(&in_force.directory, mapped.directory);
    let people = jml::compare(&in_force.directory, &directory);
    let active = in_force.directory.people().filter(|p| p.active).count();
    if let Some(held) = MassLeaving::of(&people, active, source.limits()) {
        return Err(SyncError::MassLeaving(held));
    }
    synced.replace(Some(directory.clone()));
    if directory == in_force.directory {
        // Nobody joined, moved or left: the files are not read again for nothing.
        return Ok(serde_json::json!({ "ok": true, "unchanged": true }));
    }
    match state.reload_files().await {
        Err(ReloadError::Invalid(problems)) => {
            for problem in &problems {
                tracing::error!(
                    "the configuration does not pass the checks with the directory read from LDAP: {problem}"
                );
            }
            let report = state
                .facade
                .keep_policy_take_directory(directory, problems.clone())
                .await
                .map_err(|e| SyncError::Engine(e.to_string()))?;
            tracing::error!(
                leavers = report.leavers.len(),
                movers = report.movers.len(),
                joiners = report.joiners.len(),
                "the directory read from LDAP was put in force under the policy already in \
                 force (gatehouse.toml and the policy files were not), so that leavers lose \
                 their access; fix the policy, then reload"
            );
            Ok(serde_json::json!({ "ok": false, "problems": problems, "access": report }))
        }
        Err(ReloadError::Engine(e)) => Err(SyncError::Engine(e.to_string())),
        Ok(summary) => Ok(summary),
    }
}

/// Syncs while `[directory]` says LDAP: at once, then every `sync_every`, and at once again
/// when a reload changes `[directory]` (`config`), with the new settings; until `stop`.
/// When a reload turns LDAP off, the directory of `files.directory`, which that reload put
/// in force, stays.
pub async fn run(
    mut config: watch::Receiver<SyncSettings>,
    synced: SyncedDirectory,
    state: Arc<ApiState>,
    mut stop: watch::Receiver<bool>,
) {
    // Whether reloads can still change `[directory]` (their sender is alive).
    let mut reloads = true;
    // The held read the security channel was last told about, so that it is told once.
    let mut told: Option<String> = None;
    loop {
        let source = {
            let settings = config.borrow_and_update();
            LdapDirectory::from_config(&settings.directory)
                .map(|source| source.managing(settings.managed.clone()))
        };
        let next = match source {
            None => {
                synced.replace(None);
                None
            }
            Some(source) => {
                // Stopping does not wait for LDAP; a reload already handed to the engine
                // finishes.
                let synced_once = tokio::select! {
                    result = sync_once(&source, &synced, &state) => result,
                    _ = stop.changed() => return,
                };
                match synced_once {
                    Ok(summary) if summary["unchanged"] == true => {
                        told = None;
                        tracing::debug!("directory read from LDAP: no change")
                    }
                    Ok(summary) => {
                        told = None;
                        tracing::info!(access = %summary["access"], "directory synced from LDAP")
                    }
                    Err(SyncError::MassLeaving(held)) => {
                        let message = held.to_string();
                        tracing::error!("{message}");
                        if told.as_deref() != Some(message.as_str()) {
                            let leavers = held.leavers.len();
                            let alerted = state
                                .facade
                                .directory_sync_held(leavers, message.clone())
                                .await;
                            match alerted {
                                Ok(()) => told = Some(message),
                                Err(e) => {
                                    tracing::error!(error = %e, "the security channel could not be told of the held sync")
                                }
                            }
                        }
                    }
                    Err(error) => tracing::error!("{error}"),
                }
                Some(source.every())
            }
        };
        let sleep = async {
            match next {
                Some(every) => tokio::time::sleep(every).await,
                None => std::future::pending().await,
            }
        };
        let changed = async {
            if reloads {
                config.changed().await.is_ok()
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            () = sleep => {}
            changed = changed => {
                reloads = changed;
                if changed {
                    tracing::info!("[directory] changed; the directory source follows it");
                }
            }
            _ = stop.changed() => return,
        }
    }
}
