//! `X_file = "/run/secrets/…"`: any value may be read from a file instead of written inline.
//!
//! The key `X_file` is replaced by `X` holding the file's contents without its trailing line
//! break. Relative paths are resolved from the directory of gatehouse.toml. Giving both `X`
//! and `X_file` is an error. In a `[slack]` or `[discord]` table that is not enabled, files
//! are not read (the key is dropped), just as unset variables are tolerated there. A
//! connector's `env` table is left alone: its keys are the program's variable names.

use std::borrow::Cow;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::locate::Origin;
use crate::domain::diagnostic::Diagnostic;

const SUFFIX: &str = "_file";
/// The largest secret file read: a token, a key or a certificate is far smaller, and a
/// path that names a device or a log by mistake must not be read to the end.
pub const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// The contents of a secret file, as UTF-8. Only a regular file is read: a named pipe, a
/// socket or a device would block the read (a FIFO without a writer hangs `gatehouse check`
/// for ever) or never end. The type is checked before opening, and again on what was
/// opened, without blocking, in case the path changed in between.
fn read_secret(path: &Path) -> std::io::Result<String> {
    read_regular_file(path, MAX_SECRET_BYTES, "a secret file holds one secret")
}

/// The contents of the regular file at `path`, as UTF-8, refusing a special file (see
/// [`read_secret`]) and one larger than `max_bytes` (`why` says why that is too large).
pub(crate) fn read_regular_file(path: &Path, max_bytes: u64, why: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    let too_large =
        || std::io::Error::other(format!("it is larger than {} KiB; {why}", max_bytes / 1024));
    regular_file(&std::fs::metadata(path)?)?;
    let file = open_without_blocking(path)?;
    let metadata = file.metadata()?;
    regular_file(&metadata)?;
    if metadata.len() > max_bytes {
        return Err(too_large());
    }
    let mut contents = String::new();
    file.take(max_bytes + 1).read_to_string(&mut contents)?;
    if contents.len() as u64 > max_bytes {
        return Err(too_large());
    }
    Ok(contents)
}

/// Refuses anything but a regular file, saying what it is.
fn regular_file(metadata: &std::fs::Metadata) -> std::io::Result<()> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        special_kind(&kind)
    };
    Err(std::io::Error::other(format!(
        "it is {what}, not a regular file"
    )))
}

#[cfg(unix)]
fn special_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt as _;
    if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// Opens for reading with `O_NONBLOCK`, so that opening a FIFO returns at once instead of
/// waiting for a writer; reading a regular file is not affected by the flag.
#[cfg(unix)]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

pub(super) fn resolve_document(
    root: &mut DeTable<'_>,
    base_dir: &Path,
    origin: &Origin<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    for (key, value) in root.iter_mut() {
        let read = !super::is_disabled_platform(key.get_ref(), value.get_ref());
        let resolver = Resolver {
            base_dir,
            origin,
            read,
        };
        resolver.value(value.get_mut(), key.get_ref(), diagnostics);
    }
}

struct Resolver<'a> {
    base_dir: &'a Path,
    origin: &'a Origin<'a>,
    /// False in a disabled platform's table.
    read: bool,
}

impl Resolver<'_> {
    fn value(&self, value: &mut DeValue<'_>, path: &str, diagnostics: &mut Vec<Diagnostic>) {
        match value {
            DeValue::Table(table) => self.table(table, path, diagnostics),
            DeValue::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    if let DeValue::Table(table) = item.get_mut() {
                        self.table(table, &format!("{path}[{index}]"), diagnostics);
                    }
                }
            }
            _ => {}
        }
    }

    fn table(&self, table: &mut DeTable<'_>, path: &str, diagnostics: &mut Vec<Diagnostic>) {
        let file_keys: Vec<String> = table
            .keys()
            .map(|k| k.get_ref().to_string())
            .filter(|k| k.len() > SUFFIX.len() && k.ends_with(SUFFIX))
            .collect();
        for file_key in file_keys {
            let base = &file_key[..file_key.len() - SUFFIX.len()];
            let Some((key, value)) = table.remove_entry(file_key.as_str()) else {
                continue;
            };
            if table.contains_key(base) {
                diagnostics.push(
                    self.origin
                        .error(
                            Some(value.span()),
                            format!("{path}.{base} and {path}.{file_key} are both given"),
                        )
                        .with_help(format!("keep one of {base} and {file_key}")),
                );
                continue;
            }
            if !self.read {
                continue;
            }
            let DeValue::String(file) = value.get_ref() else {
                diagnostics.push(self.origin.error(
                    Some(value.span()),
                    format!("{path}.{file_key} must be the path of a file, as a string"),
                ));
                continue;
            };
            let full = self.base_dir.join(file.as_ref());
            match read_secret(&full) {
                Ok(contents) => {
                    let contents = contents.trim_end_matches(['\n', '\r']).to_owned();
                    table.insert(
                        Spanned::new(key.span(), Cow::Owned(base.to_owned())),
                        Spanned::new(value.span(), DeValue::String(Cow::Owned(contents))),
                    );
                }
                Err(err) => diagnostics.push(
                    self.origin
                        .error(
                            Some(value.span()),
                            format!("{path}.{file_key}: cannot read {}: {err}", full.display()),
                        )
                        .with_help(
                            "check the path (relative paths start at the directory of \
                             gatehouse.toml) and that gatehouse may read the file",
                        ),
                ),
            }
        }
        for (key, value) in table.iter_mut() {
            if key.get_ref() != "env" {
                let child = format!("{path}.{}", key.get_ref());
                self.value(value.get_mut(), &child, diagnostics);
            }
        }
    }
}
