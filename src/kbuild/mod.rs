//! Kbuild output trees: what a configured, partly built kernel tree says about the next link.
//!
//! [`tree`] reads a tree the way link-vmlinux.sh does (configuration, version, flags, link
//! inputs); [`verdict`] runs ldcheck's analyses on the link it will perform and decides whether
//! it succeeds; [`ksyms`] checks CONFIG_TRIM_UNUSED_KSYMS trees for objects whose exports no
//! longer match the wanted-symbol list. This module reads trees; it never runs make or the
//! compiler, and the only thing it ever writes is the deletion of objects a report names as
//! stale.

pub mod ksyms;
pub mod tree;
pub mod verdict;
