//! `mck8s policy new LANG NAME`: writes a ready-to-build policy project. The templates are
//! the example policies of `policies/examples/` themselves, embedded in the binary, so the
//! examples that `scripts/build-examples.sh` builds and `host/policy/tests/integration/examples.rs`
//! checks are what users start from; only the policy's name and a few paths differ.

use anyhow::{Context, Result, bail};
use clap::ValueEnum;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Rust,
    C,
    Python,
    Js,
}

/// The name the examples carry; replaced by the new policy's name everywhere.
const EXAMPLE_NAME: &str = "even-spread";

macro_rules! example {
    ($path:literal) => {
        include_str!(concat!("../../../../policies/examples/", $path))
    };
}

const WIT: &str = include_str!("../../../../wit/types.wit");

const CASES: &[(&str, &str)] = &[
    ("cases/spread-round-robin.yaml", example!("cases/spread-round-robin.yaml")),
    ("cases/spread-overflow-cheapest-cloud.yaml", example!("cases/spread-overflow-cheapest-cloud.yaml")),
    ("cases/spread-max-per-cluster-unplaced.yaml", example!("cases/spread-max-per-cluster-unplaced.yaml")),
];

/// The in-tree example is a workspace member; a new project stands alone, with the SDK as a
/// path dependency (it is not published) and the size-oriented profile of the built-ins.
const RUST_MANIFEST: &str = r#"[package]
name = "{crate}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the component; rlib: for the native tests in tests/.
crate-type = ["cdylib", "rlib"]

[dependencies]
mck8s-policy-sdk = { path = "{sdk}", features = ["placement"] }

[dev-dependencies]
mck8s-policy-sdk = { path = "{sdk}", features = ["testing"] }

# Not part of any enclosing workspace.
[workspace]

[profile.release]
strip = true
lto = true
codegen-units = 1
"#;

const README: &str = r#"# {name}

A mck8s placement policy in {lang}, scaffolded by `mck8s policy new` from the `even-spread`
example (docs/sdk.md in the mck8s repository). Edit it, then:

```sh
{build}
mck8s policy check {wasm}                        # world, imports, self-check
mck8s policy test {wasm} cases --properties 200  # the cases and generated fleets
mck8s policy bench {wasm}                        # per-decision latency
```

`cases/*.yaml` are placement cases (fleet + workload → expected placement): change their
`expect` as your policy changes. Deploy by copying `{wasm}` as `{name}.wasm` into the
controller's policy directory: the file name without `.wasm` is the policy's name.
"#;

struct Project {
    files: Vec<(String, String)>,
    /// The commands that build the component, for the README and the CLI's hint.
    build: String,
}

/// Every project builds its component to this file in its directory.
const WASM: &str = "policy.wasm";

fn project(lang: Lang, name: &str, sdk: &Path) -> Result<Project> {
    let crate_name = name.replace('-', "_");
    let named = |text: &str| text.replace(EXAMPLE_NAME, name);
    let mut files: Vec<(String, String)> = Vec::new();
    let build = match lang {
        Lang::Rust => {
            let sdk = sdk.canonicalize().with_context(|| format!("the Rust SDK is not at {} (pass --sdk PATH to sdk/rust of a mck8s checkout)", sdk.display()))?;
            let manifest = RUST_MANIFEST.replace("{crate}", name).replace("{sdk}", &sdk.display().to_string());
            let test = example!("rust/tests/cases.rs")
                .replace("mck8s_policy_example_rust", &crate_name)
                .replace("even-spread.wasm", WASM)
                .replace("\"/../cases\"", "\"/cases\"")
                .replace("../cases", "cases");
            files.push(("Cargo.toml".into(), manifest));
            files.push(("src/lib.rs".into(), named(example!("rust/src/lib.rs"))));
            files.push(("tests/cases.rs".into(), test));
            "rustup target add wasm32-wasip2   # once\ncargo test    # native; the first run compiles the host engine (minutes)\ncargo build --release --target wasm32-wasip2\ncp target/wasm32-wasip2/release/{crate}.wasm policy.wasm"
        }
        Lang::C => {
            files.push(("policy.c".into(), named(example!("c/even_spread.c"))));
            files.push(("build.sh".into(), example!("c/build.sh").into()));
            "bash build.sh policy.wasm"
        }
        Lang::Python => {
            files.push(("policy.py".into(), named(example!("python/policy.py"))));
            files.push(("build.sh".into(), example!("python/build.sh").into()));
            "bash build.sh policy.wasm"
        }
        Lang::Js => {
            files.push(("policy.js".into(), named(example!("js/policy.js"))));
            files.push(("build.mjs".into(), example!("js/build.mjs").into()));
            files.push(("build.sh".into(), example!("js/build.sh").into()));
            "npm install @bytecodealliance/componentize-js@0.23.0   # once\nbash build.sh policy.wasm"
        }
    };
    if lang != Lang::Rust {
        files.push(("wit/types.wit".into(), WIT.into()));
    }
    files.extend(CASES.iter().map(|(path, text)| (path.to_string(), named(text))));
    let lang_name = match lang {
        Lang::Rust => "Rust",
        Lang::C => "C",
        Lang::Python => "Python",
        Lang::Js => "JavaScript",
    };
    let build = build.replace("{crate}", &crate_name);
    files.push(("README.md".into(), README.replace("{name}", name).replace("{lang}", lang_name).replace("{build}", &build).replace("{wasm}", WASM)));
    Ok(Project { files, build })
}

/// Policy names become file stems and, for Rust, crate names.
fn check_name(name: &str) -> Result<()> {
    let ok = name.starts_with(|c: char| c.is_ascii_lowercase()) && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') && !name.ends_with('-');
    if !ok {
        bail!("policy name {name:?}: use lowercase letters, digits and '-', starting with a letter");
    }
    Ok(())
}

/// The SDK of the checkout this binary was built from; `--sdk` overrides it.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk/rust")
}

/// Writes the project for `name` into `dir` (which must not exist or be empty) and returns
/// the files written and the commands that build it.
pub fn scaffold(lang: Lang, name: &str, dir: &Path, sdk: &Path) -> Result<(Vec<PathBuf>, String)> {
    check_name(name)?;
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!("{} exists and is not empty", dir.display());
    }
    let p = project(lang, name, sdk)?;
    let mut written = Vec::with_capacity(p.files.len());
    for (rel, text) in &p.files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
    }
    Ok((written, p.build))
}
