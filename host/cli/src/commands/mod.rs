pub mod crd;
pub mod policy;
pub mod run;
pub mod simulate;
pub mod templates;
