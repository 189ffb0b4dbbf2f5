//! `cargo fuzz run fill_fields`: see `gatehouse::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gatehouse::fuzz::run("fill_fields", data);
});
