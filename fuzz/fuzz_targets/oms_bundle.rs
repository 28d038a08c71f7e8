#![no_main]
// Fuzzes modelseal's OMS bundle and statement parsers; the harness body is
// modelseal::fuzzing::oms_bundle.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::oms_bundle(data));
