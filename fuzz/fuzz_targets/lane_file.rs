#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    amp_fuzz::lane_file(data);
});
