#![no_main]
// Fuzzes modelseal's chunked deserializer; the harness body is modelseal::fuzzing::chunked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::chunked(data));
