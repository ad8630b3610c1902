//! Expression evaluation and layout: any script that parses is laid out with no input files.
//! Text that is not a whole script is tried as the expression of `SECTIONS { . = EXPR; }`.
#![no_main]

use ldcheck::layout::{LayoutOptions, link};
use ldcheck::script::parse_script;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let wrapped = format!("SECTIONS {{ . = {text}; }}");
    for source in [text, wrapped.as_str()] {
        if let Ok(script) = parse_script(source) {
            for is_64 in [true, false] {
                let options = LayoutOptions {
                    is_64,
                    ..LayoutOptions::default()
                };
                let _ = link(&script, Vec::new(), &options);
            }
            return;
        }
    }
});
