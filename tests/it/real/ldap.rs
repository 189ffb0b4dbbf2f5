//! An OpenLDAP server of its own for a test: `slapd` with a generated slapd.conf (mdb
//! backend; core, cosine, inetorgperson and nis schemas; the memberof overlay) in a
//! temporary directory, on a free loopback port, with `dc=example,dc=com`, `ou=people` and
//! `ou=groups` in it.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ldap3::{Ldap, LdapConnAsync, Mod, Scope, SearchEntry};

use super::tls::Certificates;
use super::{log_tail, program, stop};

pub const BASE: &str = "dc=example,dc=com";
pub const PEOPLE: &str = "ou=people,dc=example,dc=com";
pub const GROUPS: &str = "ou=groups,dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PASSWORD: &str = "admin-secret";

pub struct Slapd {
    pub port: u16,
    /// The `ldaps://` port, when started with certificates.
    pub tls_port: Option<u16>,
    _dir: tempfile::TempDir,
    child: Child,
}

pub fn person_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE}")
}

pub fn group_dn(cn: &str) -> String {
    format!("cn={cn},{GROUPS}")
}

impl Slapd {
    /// A running server with the base entries; fails the test when slapd is not installed.
    pub async fn start() -> Slapd {
        Self::start_with(None).await
    }

    /// [`Slapd::start`], also serving `ldaps://` and StartTLS with `certificates` when given.
    pub async fn start_with(certificates: Option<&Certificates>) -> Slapd {
        let slapd = program(
            "OpenLDAP (slapd)",
            "slapd",
            &[PathBuf::from("/usr/sbin/slapd")],
        );
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let conf = dir.path().join("slapd.conf");
        let schema = |name: &str| format!("include /etc/ldap/schema/{name}.schema\n");
        let tls = certificates.map_or(String::new(), |c| {
            format!(
                "TLSCACertificateFile {}\nTLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                c.ca.display(),
                c.cert.display(),
                c.key.display()
            )
        });
        let text = format!(
            "{}{}{}{}{tls}modulepath /usr/lib/ldap\nmoduleload back_mdb\nmoduleload memberof\n\
             pidfile {dir}/slapd.pid\nargsfile {dir}/slapd.args\n\
             database mdb\nmaxsize 67108864\nsuffix \"{BASE}\"\nrootdn \"{ADMIN_DN}\"\n\
             rootpw {ADMIN_PASSWORD}\ndirectory {data}\noverlay memberof\n",
            schema("core"),
            schema("cosine"),
            schema("inetorgperson"),
            schema("nis"),
            dir = dir.path().display(),
            data = data.display(),
        );
        std::fs::write(&conf, text).unwrap();
        let log = dir.path().join("slapd.log");
        let port = super::free_port();
        let tls_port = certificates.map(|_| super::free_port());
        let mut urls = format!("ldap://127.0.0.1:{port}/");
        if let Some(tls_port) = tls_port {
            urls = format!("{urls} ldaps://127.0.0.1:{tls_port}/");
        }
        let child = Command::new(&slapd)
            .arg("-f")
            .arg(&conf)
            .args(["-h", &urls])
            // A debug level keeps slapd in the foreground, as our child.
            .args(["-d", "none"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("slapd starts");
        let mut server = Slapd {
            port,
            tls_port,
            _dir: dir,
            child,
        };
        server.wait_ready(&log).await;
        let mut ldap = server.admin().await;
        add(
            &mut ldap,
            BASE,
            &[
                ("objectClass", &["dcObject", "organization"]),
                ("dc", &["example"]),
                ("o", &["Example Corp"]),
            ],
        )
        .await;
        for ou in ["people", "groups"] {
            add(
                &mut ldap,
                &format!("ou={ou},{BASE}"),
                &[("objectClass", &["organizationalUnit"]), ("ou", &[ou])],
            )
            .await;
        }
        server
    }

    async fn wait_ready(&mut self, log: &std::path::Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if LdapConnAsync::new(&self.url()).await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("slapd exited with {status}:\n{}", log_tail(log));
            }
            assert!(
                Instant::now() < deadline,
                "slapd did not accept connections within 30 s:\n{}",
                log_tail(log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// A connection bound as the directory's administrator.
    pub async fn admin(&self) -> Ldap {
        let (connection, mut ldap) = LdapConnAsync::new(&self.url()).await.unwrap();
        ldap3::drive!(connection);
        ldap.simple_bind(ADMIN_DN, ADMIN_PASSWORD)
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap
    }

    /// Adds an inetOrgPerson under ou=people; `extra` adds attributes (manager, mail, …).
    pub async fn add_person(&self, uid: &str, extra: &[(&str, &[&str])]) {
        let mut attrs: Vec<(&str, &[&str])> = vec![
            ("objectClass", &["inetOrgPerson"]),
            ("uid", std::slice::from_ref(&uid)),
            ("cn", std::slice::from_ref(&uid)),
            ("sn", std::slice::from_ref(&uid)),
        ];
        attrs.extend_from_slice(extra);
        add(&mut self.admin().await, &person_dn(uid), &attrs).await;
    }

    /// Adds a group of `class` (groupOfNames or groupOfUniqueNames) holding `members` in
    /// `attribute`.
    pub async fn add_group(&self, cn: &str, class: &str, attribute: &str, members: &[&str]) {
        add(
            &mut self.admin().await,
            &group_dn(cn),
            &[
                ("objectClass", &[class]),
                ("cn", &[cn]),
                (attribute, members),
            ],
        )
        .await;
    }

    /// Replaces one attribute of an entry.
    pub async fn replace(&self, dn: &str, attribute: &str, values: &[&str]) {
        let values: HashSet<&str> = values.iter().copied().collect();
        self.admin()
            .await
            .modify(dn, vec![Mod::Replace(attribute, values)])
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    pub async fn delete(&self, dn: &str) {
        self.admin()
            .await
            .delete(dn)
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    /// The values of `attribute` on the entry `dn`, read back from the server, sorted.
    pub async fn values(&self, dn: &str, attribute: &str) -> Vec<String> {
        let (entries, _) = self
            .admin()
            .await
            .search(dn, Scope::Base, "(objectClass=*)", vec![attribute])
            .await
            .unwrap()
            .success()
            .unwrap();
        let entry = SearchEntry::construct(entries.into_iter().next().unwrap());
        let mut values = entry
            .attrs
            .into_iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(attribute))
            .map(|(_, v)| v)
            .unwrap_or_default();
        values.sort();
        values
    }
}

async fn add(ldap: &mut Ldap, dn: &str, attrs: &[(&str, &[&str])]) {
    let attrs: Vec<(&str, HashSet<&str>)> = attrs
        .iter()
        .map(|(name, values)| (*name, values.iter().copied().collect()))
        .collect();
    ldap.add(dn, attrs)
        .await
        .unwrap_or_else(|e| panic!("adding {dn}: {e}"))
        .success()
        .unwrap_or_else(|e| panic!("adding {dn}: {e}"));
}

impl Drop for Slapd {
    fn drop(&mut self) {
        stop(&mut self.child, libc::SIGTERM);
    }
}
