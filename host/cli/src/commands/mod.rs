pub mod crd;
pub mod policy;
pub mod simulate;
pub mod templates;
