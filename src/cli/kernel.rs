//! Flags shared by the commands that replay link-vmlinux.sh: which kernel's procedure, and the
//! kallsyms options Kbuild derives from `.config`.

use ldcheck::kallsyms::{Options, Version};

/// The kernel's kallsyms configuration.
#[derive(clap::Args, Clone, Debug)]
pub struct KernelFlags {
    /// Kernel whose link-vmlinux.sh procedure and scripts/kallsyms apply.
    #[arg(long, value_parser = ["6.12", "6.1"], default_value = "6.12")]
    pub kernel: String,
    /// CONFIG_KALLSYMS_ALL: kallsyms keeps symbols outside the text ranges.
    #[arg(long)]
    pub all_symbols: bool,
    /// CONFIG_KALLSYMS_ABSOLUTE_PERCPU.
    #[arg(long)]
    pub absolute_percpu: bool,
    /// CONFIG_KALLSYMS_BASE_RELATIVE (6.1).
    #[arg(long)]
    pub base_relative: bool,
    /// CONFIG_LTO_CLANG (6.1).
    #[arg(long)]
    pub lto_clang: bool,
}

impl KernelFlags {
    /// The kallsyms options these flags select.
    pub fn options(&self) -> Options {
        let mut o = Options::new(if self.kernel == "6.1" {
            Version::V6_1
        } else {
            Version::V6_12
        });
        o.all_symbols = self.all_symbols;
        o.absolute_percpu = self.absolute_percpu;
        o.base_relative = self.base_relative;
        o.lto_clang = self.lto_clang;
        o
    }
}
