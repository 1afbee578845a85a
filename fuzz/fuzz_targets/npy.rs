#![no_main]

#[path = "../checks/cli.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::npy(data);
});
