//! `cargo fuzz run discord_interaction`: see `gatehouse::fuzz`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    gatehouse::fuzz::run("discord_interaction", data);
});
