#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amp_fuzz::sponsor_request(data);
});
