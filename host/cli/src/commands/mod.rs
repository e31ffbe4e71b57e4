pub mod crd;
pub mod explain;
pub mod policy;
pub mod promote;
pub mod run;
pub mod simulate;
pub mod snapshot;
pub mod templates;
