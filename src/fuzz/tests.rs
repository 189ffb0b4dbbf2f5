//! The fuzz targets without the fuzzer: every file of their corpora (what the fuzzer kept,
//! minimised, and the inputs of past findings), and random bytes, on every `cargo test`.

use std::path::Path;

use proptest::prelude::*;

use super::{TARGETS, run};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect()
}

#[test]
fn every_target_has_a_small_corpus_and_passes_on_all_of_it() {
    for (name, target) in TARGETS {
        let files = corpus(name);
        assert!(
            (1..=64).contains(&files.len()),
            "{name}: {} files",
            files.len()
        );
        for (path, data) in files {
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{path} fails its target");
        }
    }
}

#[test]
fn every_fuzz_target_in_the_fuzz_crate_is_one_of_ours() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/fuzz_targets");
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    found.sort();
    let mut ours: Vec<String> = TARGETS.iter().map(|(n, _)| (*n).to_owned()).collect();
    ours.sort();
    assert_eq!(found, ours);
    assert!(!run("no such target", b""));
}

/// Random bytes, and random bytes after a corpus file (so that they reach past the
/// first checks), for one target.
fn smoke(name: &str) -> impl Strategy<Value = Vec<u8>> {
    let seeds: Vec<Vec<u8>> = corpus(name).into_iter().map(|(_, data)| data).collect();
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        (
            prop::sample::select(seeds),
            prop::collection::vec(any::<u8>(), 0..16),
            any::<prop::sample::Index>()
        )
            .prop_map(|(mut seed, noise, at)| {
                let at = at.index(seed.len() + 1);
                seed.splice(at..at, noise);
                seed
            }),
    ]
}

macro_rules! smoke_tests {
    ($($name:ident),* $(,)?) => {
        proptest! {
            #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
            $(
                #[test]
                fn $name(data in smoke(stringify!($name))) {
                    prop_assert!(run(stringify!($name), &data));
                }
            )*
        }
    };
}

smoke_tests!(
    access_command,
    slack_http,
    slack_socket,
    discord_interaction,
    signatures,
    config,
    policy,
    directory,
    duration,
    fill_fields,
    escape,
    render,
);
