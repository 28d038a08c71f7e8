#![no_main]
// Fuzzes modelseal's open deserializer; the harness body is modelseal::fuzzing::open.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::open(data));
