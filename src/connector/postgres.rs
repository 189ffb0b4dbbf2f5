//! The `postgres` connector: `GRANT <database role> TO <login>` and `REVOKE` it, over one
//! short connection per call.
//!
//! **Who and what.** The login is the `login` template rendered for the person (default
//! `{{ id }}`), e.g. `{{ email | split("@") | first }}`. The database role is the Gatehouse
//! role id looked up in the connector's `roles` table; without a table, the role id itself.
//! Both are quoted as identifiers, never pasted into SQL, and both must exist: a missing
//! login or database role is a permanent failure (retrying cannot create them), for a
//! revocation too, since a login that cannot be found may be one the template misnames —
//! except when the revocation undoes a failed grant ([`ConnectorCall::undo`]): then a login
//! that does not exist holds nothing. The login must be a role that can log in
//! (`rolcanlogin`): granting to a group role would give the access to all its members.
//!
//! **Idempotent.** Granting a role already held and revoking one not held both succeed
//! (PostgreSQL answers with a notice, not an error).
//!
//! **Many at once.** Revocations due together go over one connection: one query for which
//! logins and roles exist, then per database role one `REVOKE role FROM a, b, c` and one
//! query for who still holds it. Each gets the answer it would get alone.
//!
//! **`valid_until = true`** also sets `VALID UNTIL` on the login to the grant's end
//! (`infinity` for standing access), never moving it earlier than it already is, so that a
//! login whose revocation failed cannot log in with its password after the grant was due to
//! end. It acts on the whole login: use it for logins that exist only for Gatehouse's grants.
//! The GRANT and the ALTER ROLE are one transaction: when the second is refused (it needs
//! CREATEROLE), the first is rolled back and nothing stays behind.
//!
//! **Errors.** Connection problems, timeouts and the SQLSTATE classes 08 (connection),
//! 28 (authentication: a password being rotated), 40 (rollback), 53 (resources), 57
//! (operator intervention) and 58 (system) are transient; every other database error (no
//! privilege, unknown object) is permanent.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::time::Duration as StdDuration;

use chrono::SecondsFormat;
use tokio_postgres::{Client, GenericClient};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::template::{Escape, PersonTemplate};
use super::{
    Action, BoxFuture, Connector, ConnectorCall, ConnectorError, ConnectorSetupError, Outcome,
    check_action,
};
use crate::config::{ConnectorConfig, SslMode};
use crate::domain::ids::{ConnectorId, RoleId};

/// PostgreSQL cuts longer identifiers, which would name a different role.
const MAX_IDENTIFIER_BYTES: usize = 63;
const DEFAULT_LOGIN: &str = "{{ id }}";
/// Whether login $2 is a direct member of role $1.
const MEMBERSHIP: &str = "SELECT EXISTS (SELECT 1 FROM pg_auth_members a \
     JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
     WHERE r.rolname = $1 AND m.rolname = $2)";
/// Which of the logins $2 are direct members of role $1.
const MEMBERS: &str = "SELECT m.rolname::text FROM pg_auth_members a \
     JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
     WHERE r.rolname = $1 AND m.rolname::text = ANY($2)";
/// How many revocations one connection takes, each database role taken from all of its
/// logins in one statement.
const REVOKE_BATCH: usize = 64;

pub struct PostgresConnector {
    id: ConnectorId,
    pg: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    /// `host:port/dbname`, for messages.
    shown: String,
    login: PersonTemplate,
    roles: BTreeMap<RoleId, String>,
    valid_until: bool,
    timeout: StdDuration,
}

impl PostgresConnector {
    pub(super) fn from_config(config: &ConnectorConfig) -> Result<Self, ConnectorSetupError> {
        let id = config.id.clone();
        let invalid = |key: &'static str, reason: String| ConnectorSetupError::Invalid {
            id: id.clone(),
            key,
            reason,
        };
        let mut pg = match &config.url {
            Some(url) => tokio_postgres::Config::from_str(url)
                .map_err(|e| invalid("url", format!("is not a PostgreSQL URL: {e}")))?,
            None => tokio_postgres::Config::new(),
        };
        if pg.get_password().is_some() {
            return Err(invalid(
                "url",
                "holds a password; move it to password or password_file, which are never shown"
                    .to_owned(),
            ));
        }
        if let Some(host) = &config.host {
            pg.host(host);
        }
        if let Some(port) = config.port {
            pg.port(port);
        }
        if let Some(user) = &config.user {
            pg.user(user);
        }
        if let Some(dbname) = &config.dbname {
            pg.dbname(dbname);
        }
        if let Some(password) = &config.password {
            pg.password(password.expose());
        }
        if pg.get_hosts().is_empty() {
            return Err(missing(&id, "host", "host = \"db.internal\" (or url)"));
        }
        if pg.get_user().is_none() {
            return Err(missing(&id, "user", "user = \"gatehouse\" (or url)"));
        }
        pg.connect_timeout(config.timeout.to_std());
        let tls = match config.sslmode {
            SslMode::Disable => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
            mode => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Require);
                let tls = match mode {
                    SslMode::VerifyFull => crate::tls::verifying(config.ca.as_deref()),
                    _ => crate::tls::encrypting_only(),
                };
                let tls = tls.map_err(|e| invalid("ca", e.to_string()))?;
                Some(MakeRustlsConnect::new(tls))
            }
        };
        let login = config.login.as_deref().unwrap_or(DEFAULT_LOGIN);
        let login = PersonTemplate::parse(login, Escape::Plain)
            .map_err(|e| invalid("login", format!("is not a template: {e}")))?;
        let shown = shown(&pg);
        Ok(Self {
            id,
            pg,
            tls,
            shown,
            login,
            roles: config.roles.clone(),
            valid_until: config.valid_until,
            timeout: config.timeout.to_std(),
        })
    }

    async fn run(&self, call: &ConnectorCall, method: Action) -> Result<Outcome, ConnectorError> {
        check_action(&self.id, call, method)?;
        let what = format!("the {} of {}", call.action, call.grant);
        match tokio::time::timeout(self.timeout, self.change(call)).await {
            Ok(result) => result,
            Err(_) => Err(ConnectorError::Transient(format!(
                "postgres `{}` at {} did not finish {what} within {:?} (will retry)",
                self.id, self.shown, self.timeout
            ))),
        }
    }

    fn permanent(&self, text: String) -> ConnectorError {
        ConnectorError::Permanent(format!("postgres `{}` at {}: {text}", self.id, self.shown))
    }

    /// The login and database role of `call`, each as a name and quoted as an identifier.
    fn names(&self, call: &ConnectorCall) -> Result<Names, ConnectorError> {
        let permanent = |text: String| self.permanent(text);
        let login = self
            .login
            .render(&call.person)
            .map_err(|e| permanent(format!("cannot name the login of {}: {e}", call.person.id)))?;
        let role = match self.roles.get(&call.role) {
            Some(role) => role.clone(),
            None if self.roles.is_empty() => call.role.to_string(),
            None => {
                return Err(permanent(format!(
                    "role `{}` has no database role; add it to this connector's roles table",
                    call.role
                )));
            }
        };
        Ok(Names {
            login_sql: quote_ident(&login).map_err(&permanent)?,
            role_sql: quote_ident(&role).map_err(&permanent)?,
            login,
            role,
        })
    }

    async fn change(&self, call: &ConnectorCall) -> Result<Outcome, ConnectorError> {
        let permanent = |text: String| self.permanent(text);
        let Names {
            login,
            role,
            login_sql,
            role_sql,
        } = self.names(call)?;
        let mut client = self.connect().await?;
        let db = |e| self.db_error(e);
        let person = &call.person.id;
        let can_login = client
            .query_opt(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1",
                &[&login],
            )
            .await
            .map_err(db)?;
        let can_login = match can_login {
            Some(row) => row.get::<_, bool>(0),
            // Undoing a failed grant: a login that does not exist holds nothing.
            None if call.undo => return Ok(nothing_to_undo("login", &login)),
            None => return Err(self.no_login(call, &login)),
        };
        if call.action == Action::Grant && !can_login {
            // Granting to a group role would give the access to every member of the group.
            return Err(permanent(format!(
                "`{login}`, the login of {person}, is a role that cannot log in (a group role, say), so granting {role} to it would give {role} to everyone who holds `{login}`; nothing was granted. Give {person} a login of their own (CREATE ROLE … LOGIN), or fix the connector's login template"
            )));
        }
        let role_found = client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .map_err(db)?;
        if role_found.is_none() {
            if call.undo {
                return Ok(nothing_to_undo("database role", &role));
            }
            return Err(self.no_role(call, &role));
        }
        let detail = match call.action {
            Action::Grant => {
                // One transaction: when a later step fails (VALID UNTIL needs CREATEROLE), the
                // GRANT is rolled back with it and nothing stays behind.
                let transaction = client.transaction().await.map_err(db)?;
                transaction
                    .batch_execute(&format!("GRANT {role_sql} TO {login_sql}"))
                    .await
                    .map_err(db)?;
                let mut detail = format!("granted database role {role} to login {login}");
                if self.valid_until {
                    let until = self
                        .extend_validity(&transaction, &login, &login_sql, call)
                        .await?;
                    detail = format!("{detail}; login valid until {until}");
                }
                transaction.commit().await.map_err(db)?;
                detail
            }
            Action::Revoke => {
                client
                    .batch_execute(&format!("REVOKE {role_sql} FROM {login_sql}"))
                    .await
                    .map_err(db)?;
                // PostgreSQL 16 and later revoke only the grants Gatehouse's own role made:
                // a membership someone else granted survives, and must not pass for revoked.
                let still = client
                    .query_one(MEMBERSHIP, &[&role, &login])
                    .await
                    .map_err(db)?;
                if still.get::<_, bool>(0) {
                    return Err(self.still_held(&login, &role));
                }
                format!("revoked database role {role} from login {login}")
            }
        };
        Ok(Outcome { detail })
    }

    fn no_login(&self, call: &ConnectorCall, login: &str) -> ConnectorError {
        self.permanent(format!(
            "login `{login}` does not exist (for {} of {}); create it first, or fix the connector's login template",
            call.action, call.person.id
        ))
    }

    fn no_role(&self, call: &ConnectorCall, role: &str) -> ConnectorError {
        self.permanent(format!(
            "database role `{role}` does not exist (for {} of {}); create it, or fix the connector's roles table",
            call.action, call.person.id
        ))
    }

    fn still_held(&self, login: &str, role: &str) -> ConnectorError {
        self.permanent(format!(
            "login {login} still holds {role} after REVOKE: another role granted it; revoke it as that role (GRANTED BY), or let Gatehouse's role grant it"
        ))
    }

    /// Revokes `calls` over one connection: one query for which logins and roles exist, and
    /// per database role one `REVOKE role FROM a, b, c` and one query for who still holds it.
    /// Each call gets the answer it would get alone; a statement refused for all of them
    /// together is made again for each, so that one login's problem stays its own.
    async fn revoke_all(
        &self,
        calls: &[ConnectorCall],
    ) -> Result<Vec<Result<Outcome, ConnectorError>>, ConnectorError> {
        let mut results: Vec<Option<Result<Outcome, ConnectorError>>> =
            calls.iter().map(|_| None).collect();
        let mut named = Vec::new();
        for (at, call) in calls.iter().enumerate() {
            match check_action(&self.id, call, Action::Revoke).and_then(|()| self.names(call)) {
                Ok(names) => named.push((at, names)),
                Err(e) => results[at] = Some(Err(e)),
            }
        }
        let db = |e| self.db_error(e);
        let client = self.connect().await?;
        let mut asked: Vec<&str> = named
            .iter()
            .flat_map(|(_, n)| [n.login.as_str(), n.role.as_str()])
            .collect();
        asked.sort_unstable();
        asked.dedup();
        let rows = client
            .query(
                "SELECT rolname::text FROM pg_roles WHERE rolname::text = ANY($1)",
                &[&asked],
            )
            .await
            .map_err(db)?;
        let exists: HashSet<String> = rows.iter().map(|row| row.get(0)).collect();
        // Database role → the calls that take it, with their login.
        let mut by_role: BTreeMap<&str, Vec<(usize, &Names)>> = BTreeMap::new();
        for (at, names) in &named {
            let call = &calls[*at];
            let missing = if !exists.contains(&names.login) {
                Some(("login", &names.login, self.no_login(call, &names.login)))
            } else if !exists.contains(&names.role) {
                Some((
                    "database role",
                    &names.role,
                    self.no_role(call, &names.role),
                ))
            } else {
                None
            };
            match missing {
                // Undoing a failed grant: a login or role that does not exist holds nothing.
                Some((kind, name, _)) if call.undo => {
                    results[*at] = Some(Ok(nothing_to_undo(kind, name)))
                }
                Some((_, _, error)) => results[*at] = Some(Err(error)),
                None => by_role
                    .entry(names.role.as_str())
                    .or_default()
                    .push((*at, names)),
            }
        }
        for (role, takers) in by_role {
            let mut logins: Vec<&str> = takers.iter().map(|(_, n)| n.login.as_str()).collect();
            logins.sort_unstable();
            logins.dedup();
            let from: Vec<&str> = takers.iter().map(|(_, n)| n.login_sql.as_str()).collect();
            let mut from = from;
            from.sort_unstable();
            from.dedup();
            let role_sql = &takers[0].1.role_sql;
            let together = client
                .batch_execute(&format!("REVOKE {role_sql} FROM {}", from.join(", ")))
                .await;
            if let Err(e) = together {
                let error = self.db_error(e);
                if error.is_transient() {
                    for (at, _) in &takers {
                        results[*at] = Some(Err(error.clone()));
                    }
                    continue;
                }
                // Refused for all together (a login dropped meanwhile, say): one by one.
                for (at, names) in &takers {
                    let alone = format!("REVOKE {} FROM {}", names.role_sql, names.login_sql);
                    if let Err(e) = client.batch_execute(&alone).await {
                        results[*at] = Some(Err(self.db_error(e)));
                    }
                }
            }
            let still: HashSet<String> = client
                .query(MEMBERS, &[&role, &logins])
                .await
                .map_err(db)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            for (at, names) in &takers {
                if results[*at].is_some() {
                    continue;
                }
                results[*at] = Some(if still.contains(&names.login) {
                    Err(self.still_held(&names.login, role))
                } else {
                    Ok(Outcome {
                        detail: format!("revoked database role {role} from login {}", names.login),
                    })
                });
            }
        }
        Ok(results
            .into_iter()
            .map(|result| {
                result.unwrap_or_else(|| {
                    Err(ConnectorError::Transient(format!(
                        "postgres `{}`: a revocation made with others had no answer (will retry)",
                        self.id
                    )))
                })
            })
            .collect())
    }

    /// Sets `VALID UNTIL` to the grant's end unless the login is already valid longer.
    async fn extend_validity(
        &self,
        client: &impl GenericClient,
        login: &str,
        login_sql: &str,
        call: &ConnectorCall,
    ) -> Result<String, ConnectorError> {
        let until = call.expires_at.map_or_else(
            || "infinity".to_owned(),
            |t| t.to_rfc3339_opts(SecondsFormat::Secs, true),
        );
        let row = client
            .query_one(
                "SELECT coalesce(rolvaliduntil >= $2::text::timestamptz, false) \
                 FROM pg_roles WHERE rolname = $1",
                &[&login, &until],
            )
            .await
            .map_err(|e| self.db_error(e))?;
        if row.get::<_, bool>(0) {
            return Ok("unchanged (already later)".to_owned());
        }
        client
            .batch_execute(&format!(
                "ALTER ROLE {login_sql} VALID UNTIL {}",
                quote_literal(&until)
            ))
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(until)
    }

    async fn connect(&self) -> Result<Client, ConnectorError> {
        let failed = |e: tokio_postgres::Error| match e.as_db_error() {
            // Refused by the server (bad password, no such database): as any database error.
            Some(_) => self.db_error(e),
            None => ConnectorError::Transient(format!(
                "postgres `{}` could not connect to {}: {} (will retry)",
                self.id,
                self.shown,
                super::webhook::error_chain(&e)
            )),
        };
        let client = match &self.tls {
            None => {
                let (client, connection) = self
                    .pg
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(failed)?;
                tokio::spawn(drive(connection));
                client
            }
            Some(tls) => {
                let (client, connection) = self.pg.connect(tls.clone()).await.map_err(failed)?;
                tokio::spawn(drive(connection));
                client
            }
        };
        Ok(client)
    }

    fn db_error(&self, error: tokio_postgres::Error) -> ConnectorError {
        let (id, shown) = (&self.id, &self.shown);
        match error.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let text = format!(
                    "postgres `{id}` at {shown}: {} (SQLSTATE {code})",
                    db.message()
                );
                let class = &code[..2.min(code.len())];
                if class == "28" {
                    // A rejected password is retried: a rotation may be under way, and the
                    // next reload brings the new password_file.
                    ConnectorError::Transient(format!(
                        "{text} (will retry: if the password was rotated, update password_file and run gatehouse reload)"
                    ))
                } else if ["08", "40", "53", "57", "58"].contains(&class) {
                    ConnectorError::Transient(format!("{text} (will retry)"))
                } else {
                    ConnectorError::Permanent(text)
                }
            }
            None => ConnectorError::Transient(format!(
                "postgres `{id}` at {shown}: {} (will retry)",
                super::webhook::error_chain(&error)
            )),
        }
    }
}

async fn drive<C: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: C) {
    if let Err(error) = connection.await {
        tracing::debug!(%error, "postgres connection ended");
    }
}

impl Connector for PostgresConnector {
    fn grant<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.run(call, Action::Grant))
    }

    fn revoke<'a>(
        &'a self,
        call: &'a ConnectorCall,
    ) -> BoxFuture<'a, Result<Outcome, ConnectorError>> {
        Box::pin(self.run(call, Action::Revoke))
    }

    fn revoke_batch(&self) -> usize {
        REVOKE_BATCH
    }

    fn revoke_many<'a>(
        &'a self,
        calls: &'a [ConnectorCall],
    ) -> BoxFuture<'a, Vec<Result<Outcome, ConnectorError>>> {
        Box::pin(async move {
            let answers = match tokio::time::timeout(self.timeout, self.revoke_all(calls)).await {
                Ok(Ok(answers)) => return answers,
                Ok(Err(error)) => error,
                Err(_) => ConnectorError::Transient(format!(
                    "postgres `{}` at {} did not finish {} revocations within {:?} (will retry)",
                    self.id,
                    self.shown,
                    calls.len(),
                    self.timeout
                )),
            };
            calls.iter().map(|_| Err(answers.clone())).collect()
        })
    }
}

/// A call's login and database role, as names and as quoted identifiers.
struct Names {
    login: String,
    role: String,
    login_sql: String,
    role_sql: String,
}

fn missing(id: &ConnectorId, key: &'static str, example: &'static str) -> ConnectorSetupError {
    ConnectorSetupError::MissingKey {
        id: id.clone(),
        kind: "postgres",
        key,
        example,
    }
}

/// The outcome of undoing a failed grant for someone the database does not know.
fn nothing_to_undo(kind: &str, name: &str) -> Outcome {
    Outcome {
        detail: format!("{kind} {name} does not exist, so nothing was granted: nothing to undo"),
    }
}

/// `host:port/dbname` without the user or password.
fn shown(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let dbname = pg.get_dbname().or(pg.get_user()).unwrap_or_default();
    format!("{host}:{port}/{dbname}")
}

/// `name` as a PostgreSQL identifier: in double quotes, inner quotes doubled, so any name
/// (spaces, capitals, quotes) stays one identifier and nothing in it is SQL.
pub fn quote_ident(name: &str) -> Result<String, String> {
    if name.is_empty() || name.contains('\0') {
        return Err(format!("`{name}` cannot be a PostgreSQL name"));
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        return Err(format!(
            "`{name}` is longer than PostgreSQL's {MAX_IDENTIFIER_BYTES} bytes for a name, which would cut it to another name"
        ));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// `text` as an SQL string literal.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests;
