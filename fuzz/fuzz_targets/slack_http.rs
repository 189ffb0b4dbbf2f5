//! `cargo fuzz run slack_http`: see `gatehouse::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gatehouse::fuzz::run("slack_http", data);
});
