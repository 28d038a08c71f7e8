#![no_main]
// Fuzzes modelseal's key_files deserializer and the pkcs11: key URI parser; the harness body is modelseal::fuzzing::key_files.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::key_files(data));
