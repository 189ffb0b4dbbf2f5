//! `cargo fuzz run duration`: see `gatehouse::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gatehouse::fuzz::run("duration", data);
});
