//! What a component declares: which mck8s world (and WIT version) it implements and what it
//! imports. Checked before anything runs, so an incompatible or over-privileged policy is
//! refused with a message that says why.

use crate::error::PolicyErrorKind;
use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

#[derive(Clone, Debug, Serialize)]
pub struct Surface {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// Interfaces a policy may import. Rust's wasip2 standard library links wasi:cli's stdio,
/// environment and exit and wasi:io; they are provided with nothing behind them (empty
/// environment, stdout/stderr captured for error messages).
const ALLOWED_IMPORTS: &[&str] = &[
    "mck8s:policy/log@",
    "mck8s:policy/types@",
    "mck8s:policy/scaling-types@",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/stdin@",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/terminal-input@",
    "wasi:cli/terminal-output@",
    "wasi:cli/terminal-stdin@",
    "wasi:cli/terminal-stdout@",
    "wasi:cli/terminal-stderr@",
    "wasi:io/error@",
    "wasi:io/streams@",
    "wasi:io/poll@",
];

pub fn surface(engine: &Engine, component: &Component) -> Surface {
    let ty = component.component_type();
    Surface { imports: ty.imports(engine).map(|(n, _)| n.to_string()).collect(), exports: ty.exports(engine).map(|(n, _)| n.to_string()).collect() }
}

/// Which world a component implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PolicyKind {
    Placement,
    Scaling,
}

/// The world and WIT version the component implements, if this host can run it.
pub fn check(surface: &Surface) -> Result<(PolicyKind, String), PolicyErrorKind> {
    let forbidden: Vec<String> = surface.imports.iter().filter(|i| !ALLOWED_IMPORTS.iter().any(|a| i.starts_with(a))).cloned().collect();
    if !forbidden.is_empty() {
        return Err(PolicyErrorKind::ForbiddenImport { imports: forbidden });
    }
    let mut found = None;
    for export in &surface.exports {
        let kind = if let Some(v) = export.strip_prefix("mck8s:policy/placer@") {
            (PolicyKind::Placement, v)
        } else if let Some(v) = export.strip_prefix("mck8s:policy/scaler@") {
            (PolicyKind::Scaling, v)
        } else {
            continue;
        };
        if found.is_some() {
            return Err(PolicyErrorKind::Incompatible("exports both mck8s:policy/placer and scaler; a policy implements one world".into()));
        }
        found = Some(kind);
    }
    let Some((kind, version)) = found else {
        return Err(PolicyErrorKind::Incompatible(format!(
            "exports neither mck8s:policy/placer nor mck8s:policy/scaler (it exports: {}); build it against the `placement` or `scaling` world of wit/",
            if surface.exports.is_empty() { "nothing".to_string() } else { surface.exports.join(", ") }
        )));
    };
    if !compatible(version, crate::WIT_VERSION) {
        return Err(PolicyErrorKind::Incompatible(format!(
            "was built for mck8s:policy@{version}; this host implements mck8s:policy@{} and runs policies built for any semver-compatible version ({})",
            crate::WIT_VERSION,
            compat_class(crate::WIT_VERSION)
        )));
    }
    Ok((kind, version.to_string()))
}

/// Semver compatibility as Cargo and wasmtime see it: same major, or for 0.x the same minor.
pub fn compatible(guest: &str, host: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut it = v.split(['.', '-', '+']);
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    match (parse(guest), parse(host)) {
        (Some((gm, gn)), Some((hm, hn))) => gm == hm && (gm != 0 || gn == hn),
        _ => false,
    }
}

fn compat_class(v: &str) -> String {
    let mut it = v.split('.');
    match (it.next(), it.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}.*"),
        (Some(major), _) => format!("{major}.*"),
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_compatibility() {
        assert!(compatible("0.1.0", "0.1.3"));
        assert!(compatible("0.1.7", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.0.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }

    #[test]
    fn forbidden_imports_are_named() {
        let s = Surface { imports: vec!["wasi:io/streams@0.2.6".into(), "wasi:filesystem/preopens@0.2.6".into()], exports: vec!["mck8s:policy/placer@0.1.0".into()] };
        let err = check(&s).unwrap_err().to_string();
        assert!(err.contains("wasi:filesystem/preopens@0.2.6") && !err.contains("streams"), "{err}");
    }

    #[test]
    fn version_and_world_are_checked() {
        let mk = |e: &str| Surface { imports: vec![], exports: vec![e.into()] };
        assert_eq!(check(&mk("mck8s:policy/scaler@0.1.2")).unwrap().0, PolicyKind::Scaling);
        let err = check(&mk("mck8s:policy/placer@0.2.0")).unwrap_err().to_string();
        assert!(err.contains("0.2.0") && err.contains("0.1.*"), "{err}");
        assert!(check(&mk("example:other/thing@1.0.0")).is_err());
    }
}
