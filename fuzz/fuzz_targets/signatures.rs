//! `cargo fuzz run signatures`: see `gatehouse::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gatehouse::fuzz::run("signatures", data);
});
