#![no_main]
// Fuzzes modelseal's pickle deserializer; the harness body is modelseal::fuzzing::pickle.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::pickle(data));
