//! `gatehouse migrate`, with the real binary: an installation moved from a sled data
//! directory into PostgreSQL and back holds exactly what it held, its audit chain still
//! anchored by the key of gatehouse.toml; a target that is not empty is refused.

use std::process::Command;

use gatehouse::domain::anchor::AuditKey;
use gatehouse::store::backup::read;
use gatehouse::store::{Commit, SledStore, Store};

use super::backends::Postgres;
use super::records::*;
use crate::support::Files;

fn migrate(files: &Files, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--config")
        .arg(files.config())
        .arg("migrate")
        .args(args)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// Every entry of a backup of `store`, as `tree key value` lines, sorted.
fn contents(store: &impl Store) -> Vec<String> {
    let spooled = store.backup_file().unwrap();
    let backup = read(std::io::BufReader::new(spooled.file)).unwrap();
    let mut lines: Vec<String> = backup
        .entries
        .iter()
        .map(|e| format!("{} {} {}", e.tree, hex(&e.key), hex(&e.value)))
        .collect();
    lines.sort();
    lines
}

/// Both hold the same entries; else the ones only one holds.
fn same(found: &[String], expected: &[String], what: &str) {
    let extra: Vec<&String> = found.iter().filter(|e| !expected.contains(e)).collect();
    let missing: Vec<&String> = expected.iter().filter(|e| !found.contains(e)).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "{what}: not so; extra {extra:?}, missing {missing:?}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
fn an_installation_moves_to_postgres_and_back_and_holds_exactly_what_it_held() {
    let files = Files::copy_examples();
    let data = files.path("data");
    let key = AuditKey::new(b"dev-only-audit-key-change-me-00000000");
    let before = {
        let store = SledStore::open(&data).unwrap();
        store.anchor_with(key.clone()).unwrap();
        for id in 1..=5 {
            store
                .commit(submit(request(id, "ann"), id as i64 * 10))
                .unwrap();
        }
        store
            .commit(Commit {
                marks: vec![("digest".to_owned(), at(3))],
                ..Commit::default()
            })
            .unwrap();
        assert!(store.first_delivery("slack:Ev1", at(900)).unwrap());
        contents(&store)
    };
    let database = Postgres::new();
    let url = format!("{}?sslmode=disable", database.url());
    let (ok, said) = migrate(&files, &["--from", "data", "--to", &url]);
    assert!(ok, "{said}");
    assert!(
        said.contains("5 requests, 0 grants, 5 audit events"),
        "{said}"
    );
    let in_postgres = {
        let store = database.pg();
        let found = store.anchor_with(key.clone()).unwrap();
        assert!(!found.is_suspicious(), "{found}");
        let report = store.verify_audit_against(&[]).unwrap();
        assert_eq!((report.events, report.anchored_through), (5, 5));
        contents(&store)
    };
    same(&in_postgres, &before, "PostgreSQL holds what sled held");

    let (ok, said) = migrate(&files, &["--from", &url, "--to", "back"]);
    assert!(ok, "{said}");
    let back = contents(&SledStore::open(&files.path("back")).unwrap());
    same(&back, &before, "and sled again, after the way back");

    // Into a database that holds an installation already: refused, nothing written.
    let (ok, said) = migrate(&files, &["--from", "data", "--to", &url]);
    assert!(!ok, "{said}");
    assert!(said.contains("already holds Gatehouse data"), "{said}");
    same(
        &contents(&database.pg()),
        &before,
        "the database is as it was",
    );
}
