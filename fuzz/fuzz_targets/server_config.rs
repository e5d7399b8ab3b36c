#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amp_fuzz::server_config(data);
});
