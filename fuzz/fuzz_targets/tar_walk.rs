#![no_main]
// Fuzzes modelseal's tar_walk deserializer; the harness body is modelseal::fuzzing::tar_walk.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::tar_walk(data));
