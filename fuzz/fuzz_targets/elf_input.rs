//! Any bytes as a link input (ELF object or `ar` archive), and as `nm` input.
#![no_main]

use ldcheck::input::{InputFile, nm, parse_bytes};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = parse_bytes(Path::new("fuzz.o"), data, None) {
        let objects = match &file {
            InputFile::Object(o) => std::slice::from_ref(o),
            InputFile::Archive(a) => a.members.as_slice(),
        };
        for object in objects {
            for sym in &object.symbols {
                let _ = object.symbol_section(sym);
            }
        }
    }
    let _ = nm::nm_numeric(data);
});
