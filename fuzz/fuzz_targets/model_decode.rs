#![no_main]
// Fuzzes modelseal's model_decode deserializer; the harness body is modelseal::fuzzing::model_decode.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::model_decode(data));
