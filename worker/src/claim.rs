//! Claiming due deliveries: the worker's side of `claim.lua`, whose call
//! and reply live in the storage layer ([`hookfleet_common::store::claim`]).

pub use hookfleet_common::store::claim::*;
