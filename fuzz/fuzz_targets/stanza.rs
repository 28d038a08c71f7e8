#![no_main]
// Fuzzes modelseal's stanza deserializer; the harness body is modelseal::fuzzing::stanza.
libfuzzer_sys::fuzz_target!(|data: &[u8]| modelseal::fuzzing::stanza(data));
