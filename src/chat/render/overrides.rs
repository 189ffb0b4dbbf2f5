//! Loading the templates: the built-ins compiled in, and the files under `files.templates`
//! that replace them by name. A file that fails to compile is a load error naming its path
//! and line; a file that names no built-in is kept aside for `gatehouse check` to report. Only
//! regular files are read (a named pipe would block the load for ever).

use std::path::{Path, PathBuf};

use super::escape::environment;
use super::{BUILTIN, Templates, describe};
use crate::config::read_regular_file;

/// The largest override file read: the biggest built-in template is a few KiB.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

/// Template overrides that could not be loaded, each named with its file and line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct LoadError {
    pub problems: Vec<String>,
}

impl Templates {
    /// The compiled-in templates, with each `*.j2` file under `overrides` (say
    /// `slack/approval_card.j2` or `discord/approval_card.j2`) replacing the built-in of the
    /// same name. A file that names
    /// no template is not an error; [`Templates::unknown_overrides`] lists it.
    pub fn load(overrides: Option<&Path>) -> Result<Self, LoadError> {
        let mut problems = Vec::new();
        let mut builtin = environment();
        for (name, source) in BUILTIN {
            if let Err(e) = builtin.add_template(name, source) {
                problems.push(format!("built-in template {name}: {}", describe(&e)));
            }
        }
        let mut env = builtin.clone();
        let (mut overridden, mut unknown) = (Vec::new(), Vec::new());
        if let Some(dir) = overrides {
            for (name, path) in list_files(dir, &mut problems) {
                if !BUILTIN.iter().any(|(b, _)| *b == name) {
                    unknown.push(name);
                    continue;
                }
                match read_regular_file(
                    &path,
                    MAX_TEMPLATE_BYTES,
                    "a message template is far smaller",
                ) {
                    Err(e) => problems.push(format!("{}: cannot read: {e}", path.display())),
                    Ok(source) => match env.add_template_owned(name.clone(), source) {
                        Ok(()) => overridden.push(name),
                        Err(e) => problems.push(format!(
                            "{}{}: {}",
                            path.display(),
                            e.line().map(|l| format!(":{l}")).unwrap_or_default(),
                            describe(&e)
                        )),
                    },
                }
            }
        }
        if !problems.is_empty() {
            return Err(LoadError { problems });
        }
        Ok(Templates {
            env,
            builtin,
            overridden,
            unknown,
            set_aside: Default::default(),
        })
    }
}

/// Every file under `dir`, by its path relative to `dir` with `/` separators.
fn list_files(dir: &Path, problems: &mut Vec<String>) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) => {
                problems.push(format!(
                    "{}: cannot read the template directory: {e}",
                    current.display()
                ));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                let name: Vec<String> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                found.push((name.join("/"), path.clone()));
            }
        }
    }
    found.sort();
    found
}
