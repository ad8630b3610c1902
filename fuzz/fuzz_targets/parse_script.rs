//! Any text: the parser returns a script or an error, and a parsed script prints back to text
//! that parses again.
#![no_main]

use ldcheck::script::{parse_script, print_script};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(script) = parse_script(text) {
        let printed = print_script(&script);
        assert!(
            parse_script(&printed).is_ok(),
            "printed script fails to parse:\n{printed}"
        );
    }
});
