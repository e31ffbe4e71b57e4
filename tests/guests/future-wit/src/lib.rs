//! Built for mck8s:policy@0.2.0: the host must refuse it and say which versions it runs.

wit_bindgen::generate!({ world: "placement", path: "wit" });

struct Future;

impl exports::mck8s::policy::placer::Guest for Future {
    fn info() -> String {
        "from the future".into()
    }
}

export!(Future);
