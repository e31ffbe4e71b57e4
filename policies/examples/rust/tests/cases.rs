//! The policy natively, without Wasm: every case file must pass (`cargo test`). Then the
//! same files through the host: `mck8s policy test even-spread.wasm ../cases`.

use mck8s_policy_example_rust::EvenSpread;

#[test]
fn shared_cases() {
    mck8s_policy_sdk::testing::assert_cases::<EvenSpread>(concat!(env!("CARGO_MANIFEST_DIR"), "/../cases"));
}
