#![no_main]
// Fuzzes modelseal's manifest deserializer; the harness body is modelseal::fuzzing::manifest.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::manifest(data));
