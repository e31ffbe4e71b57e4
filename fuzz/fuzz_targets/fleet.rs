//! The small fleets the targets decide against (a module of the targets that need one, not a
//! target itself).

use mck8s_policy::FleetSnapshot;
use mck8s_policy::input::FleetDoc;

/// A fleet from the simulator's YAML form; the text is the target's own constant.
pub fn from_yaml(yaml: &str) -> FleetSnapshot {
    let doc: FleetDoc = serde_yaml_ng::from_str(yaml).expect("the target's fleet parses");
    FleetSnapshot::from_doc(&doc).expect("the target's fleet is valid")
}
