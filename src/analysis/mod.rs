//! Analyses built on the layout simulator and the kallsyms generator: link-vmlinux.sh's pass
//! procedure, and which layout coincidences can make its passes disagree.

pub mod fix;
pub mod hazards;
pub mod image;
pub mod kdiff;
pub mod margin;
pub mod mksysmap;
pub mod passes;
pub mod source;
pub mod system_map;
