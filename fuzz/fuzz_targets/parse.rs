//! Fuzz the front end: any input either parses (and then simplifies,
//! differentiates and prints without panicking) or yields a diagnostic
//! that renders without panicking.
//!
//!   RUSTC_BOOTSTRAP=1 cargo fuzz run parse -- -max_len=512
#![no_main]

use actforge_formula::diff::Function;
use actforge_formula::ir::{to_infix_limited, Library, MAX_PRINT_NODES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match Library::standard().parse(src) {
        Ok(e) => {
            let f = Function::new(&e);
            let _ = to_infix_limited(&f.graph, f.f, MAX_PRINT_NODES);
            let _ = to_infix_limited(&f.graph, f.df, MAX_PRINT_NODES);
            let _ = f.value(0.5);
        }
        Err(d) => {
            let r = d.render();
            assert!(r.starts_with("error: "));
        }
    }
});
