//! Any bytes fed to the experiment loader yield a spec or diagnostics, never a panic; every
//! diagnostic carries a 1-based position.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(diagnostics) = steadfast::spec::parse_experiment("fuzz.yaml", text) {
        assert!(!diagnostics.is_empty());
        for d in &diagnostics {
            assert!(d.line >= 1 && d.column >= 1, "{d}");
        }
    }
});
