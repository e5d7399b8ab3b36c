//! Sessions (docs/SPEC.md, "Sessions"): the keys that issue and check them,
//! and the endpoint that opens them. Admission checks session requests with
//! the keys alone, so it does not depend on the endpoint, which records its
//! opening credential through credit.

pub(crate) mod endpoint;
pub(crate) mod keys;
