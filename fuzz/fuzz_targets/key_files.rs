#![no_main]
// Fuzzes modelseal's key_files deserializer; the harness body is modelseal::fuzzing::key_files.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::key_files(data));
