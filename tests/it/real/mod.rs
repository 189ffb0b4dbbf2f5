//! Throwaway PostgreSQL and OpenLDAP servers from Debian's packages, each in a temporary
//! directory on a free loopback port, stopped when dropped.
//!
//! The tests that use them are `#[ignore]`d with the reason, so that a plain `cargo test` on a
//! machine without the programs reports them as ignored rather than passed; `.ci/run` installs
//! the programs and runs them with `--ignored`. Asked to run, such a test never skips: a
//! missing program fails it, saying which package to install.

pub mod ldap;
pub mod postgres;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::Child;

/// The first of `candidates` that exists; a test that needs a missing program fails, since it
/// runs only when asked to (`--ignored`).
pub fn program(what: &str, package: &str, candidates: &[PathBuf]) -> PathBuf {
    match candidates.iter().find(|p| p.is_file()) {
        Some(found) => found.clone(),
        None => panic!(
            "this test cannot run: {what} is not installed (looked at {candidates:?}); install \
             the Debian package `{package}` (apt-get install -y --no-install-recommends \
             {package}), as .ci/run does"
        ),
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Who a server runs as: PostgreSQL refuses root, so under root an unprivileged account
/// (`postgres`, which the package creates, else `nobody`) owns the data and runs it.
pub fn unprivileged_user() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    for name in [c"postgres", c"nobody"] {
        // SAFETY: `name` is NUL-terminated; the result is read at once, before another call.
        let entry = unsafe { libc::getpwnam(name.as_ptr()) };
        if !entry.is_null() {
            // SAFETY: not null, so it points at a passwd record.
            let entry = unsafe { &*entry };
            return Some((entry.pw_uid, entry.pw_gid));
        }
    }
    panic!("running as root, and neither user postgres nor nobody exists to run a server as");
}

/// Gives `path` (and what is in it) to `user`, when there is one.
pub fn give_to(path: &Path, user: Option<(u32, u32)>) {
    let Some((uid, gid)) = user else { return };
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            give_to(&entry.unwrap().path(), user);
        }
    }
}

/// Stops a server child: `signal`, then waits so that no process outlives the test.
pub fn stop(child: &mut Child, signal: i32) {
    if let Ok(None) = child.try_wait() {
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        unsafe { libc::kill(child.id() as i32, signal) };
        let _ = child.wait();
    }
}

/// The end of a server's log, for a failure message.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
