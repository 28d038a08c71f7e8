#![no_main]
// Fuzzes modelseal's header deserializer; the harness body is modelseal::fuzzing::header.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::header(data));
