//! Replays every input kept under `fuzz/regressions/` through the fuzz
//! targets' invariants, so that a crash found once stays fixed.

#[path = "../fuzz/invariants.rs"]
mod invariants;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("regressions folder") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("input");
        check(&data);
        count += 1;
    }
    count
}

#[test]
fn kept_target_inputs_hold_the_invariants() {
    assert!(replay("route_target", invariants::check_target) > 0);
}

#[test]
fn kept_batch_inputs_hold_the_invariants() {
    assert!(replay("batch_body", invariants::check_batch) > 0);
}
