//! The byte layout of the `.rodata` section the tables assemble to: each table's offset and
//! size, the `ALGN` padding between them, and the section's total size and alignment.
//!
//! Computed from counts and lengths only, never from formatted text: the pass simulator asks
//! for it thousands of times. The order of tables per version lives here and is shared with
//! the emitter, so the two cannot disagree.

use super::{Options, Tables, Version, stable};

/// `BITS_PER_LONG` of the target: decides `PTR` (`.long`/`.quad`) and `ALGN` (4/8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PtrWidth {
    /// 32-bit kernels (arm, i386): `.long` pointers, 4-byte alignment.
    Bits32,
    /// 64-bit kernels (x86_64, arm64): `.quad` pointers, 8-byte alignment.
    Bits64,
}

impl PtrWidth {
    /// Size of `PTR` and the `ALGN` boundary, in bytes.
    pub fn bytes(self) -> u64 {
        match self {
            PtrWidth::Bits32 => 4,
            PtrWidth::Bits64 => 8,
        }
    }
}

/// One labelled table in the kallsyms `.rodata`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableKind {
    /// `kallsyms_addresses` (6.1 without `--base-relative`): one `PTR` per symbol.
    Addresses,
    /// `kallsyms_offsets`: one 32-bit offset per symbol.
    Offsets,
    /// `kallsyms_relative_base`: one `PTR`.
    RelativeBase,
    /// `kallsyms_num_syms`: one 32-bit count.
    NumSyms,
    /// `kallsyms_names`: length-prefixed compressed names.
    Names,
    /// `kallsyms_markers`: a 32-bit offset into the names every 256 symbols.
    Markers,
    /// `kallsyms_seqs_of_names`: 3 bytes per symbol.
    SeqsOfNames,
    /// `kallsyms_token_table`: 256 NUL-terminated strings.
    TokenTable,
    /// `kallsyms_token_index`: 256 16-bit offsets.
    TokenIndex,
}

impl TableKind {
    /// The global label the assembly defines for this table.
    pub fn label(self) -> &'static str {
        match self {
            TableKind::Addresses => "kallsyms_addresses",
            TableKind::Offsets => "kallsyms_offsets",
            TableKind::RelativeBase => "kallsyms_relative_base",
            TableKind::NumSyms => "kallsyms_num_syms",
            TableKind::Names => "kallsyms_names",
            TableKind::Markers => "kallsyms_markers",
            TableKind::SeqsOfNames => "kallsyms_seqs_of_names",
            TableKind::TokenTable => "kallsyms_token_table",
            TableKind::TokenIndex => "kallsyms_token_index",
        }
    }

    /// Whether the table's size depends on the symbol set (padded by stable `--reserve`).
    pub fn varies(self) -> bool {
        !matches!(
            self,
            TableKind::NumSyms | TableKind::TokenIndex | TableKind::RelativeBase
        )
    }
}

/// The tables in output order for `options`.
pub(super) fn sequence(options: &Options) -> Vec<TableKind> {
    use TableKind::*;
    match options.version {
        Version::V6_12 => vec![
            NumSyms,
            Names,
            Markers,
            TokenTable,
            TokenIndex,
            Offsets,
            RelativeBase,
            SeqsOfNames,
        ],
        Version::V6_1 => {
            let mut seq = if options.base_relative {
                vec![Offsets, RelativeBase]
            } else {
                vec![Addresses]
            };
            seq.extend([NumSyms, Names, Markers, SeqsOfNames, TokenTable, TokenIndex]);
            seq
        }
    }
}

/// Where one table sits in the section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TablePlacement {
    /// Which table.
    pub kind: TableKind,
    /// Offset of its label from the start of `.rodata` (what `nm` shows for the object).
    pub offset: u64,
    /// Bytes of data, including stable-mode padding.
    pub size: u64,
    /// Stable-mode padding included in `size`.
    pub padding: u64,
}

/// The assembled `.rodata` of the kallsyms object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RodataLayout {
    /// Tables in output order.
    pub tables: Vec<TablePlacement>,
    /// Section size in bytes.
    pub size: u64,
    /// Section alignment in bytes.
    pub align: u64,
}

/// `kallsyms_names` bytes: each entry is a ULEB128 length (1 or 2 bytes) plus the data.
pub(super) fn names_bytes(name_ends: &[u32]) -> u64 {
    let mut prev = 0u32;
    let mut total = 0u64;
    for &end in name_ends {
        total += entry_bytes((end - prev) as usize);
        prev = end;
    }
    total
}

/// Bytes of one `kallsyms_names` entry whose compressed name is `len` bytes long.
pub(super) fn entry_bytes(len: usize) -> u64 {
    len as u64 + if len <= 0x7f { 1 } else { 2 }
}

fn round_up(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// What the tables' sizes depend on: the options, the symbol count, and two results of the
/// compression. Lets a caller that only needs the layout skip copying the tables.
#[derive(Clone, Copy, Debug)]
pub(super) struct TableSizes {
    pub options: Options,
    pub symbols: u64,
    pub names_bytes: u64,
    pub token_table_bytes: u64,
}

impl Tables<'_> {
    fn sizes(&self) -> TableSizes {
        TableSizes {
            options: self.options,
            symbols: self.syms.len() as u64,
            names_bytes: self.names_bytes,
            token_table_bytes: self.tokens.table_bytes(),
        }
    }

    /// Stable-mode padding appended to a table of `bytes` bytes.
    pub(super) fn padding(&self, kind: TableKind, bytes: u64) -> u64 {
        self.sizes().padding(kind, bytes)
    }

    /// Offsets and sizes of every table, as the assembler lays them out.
    pub fn rodata_layout(&self, ptr: PtrWidth) -> RodataLayout {
        self.sizes().rodata_layout(ptr)
    }

    /// Exact size of the assembled `.rodata` in bytes.
    pub fn rodata_size(&self, ptr: PtrWidth) -> u64 {
        self.sizes().rodata_size(ptr)
    }
}

impl TableSizes {
    /// Unpadded data size of one table.
    fn data_bytes(&self, kind: TableKind, ptr: PtrWidth) -> u64 {
        let n = self.symbols;
        match kind {
            TableKind::Addresses => n * ptr.bytes(),
            TableKind::Offsets => n * 4,
            TableKind::RelativeBase => ptr.bytes(),
            TableKind::NumSyms => 4,
            TableKind::Names => self.names_bytes,
            TableKind::Markers => n.div_ceil(256) * 4,
            TableKind::SeqsOfNames => n * 3,
            TableKind::TokenTable => self.token_table_bytes,
            TableKind::TokenIndex => 512,
        }
    }

    /// Stable-mode padding appended to a table of `bytes` bytes.
    fn padding(&self, kind: TableKind, bytes: u64) -> u64 {
        match self.options.stable {
            Some(options) if kind.varies() => stable::padding(options.reserve, bytes),
            _ => 0,
        }
    }

    pub(super) fn rodata_layout(&self, ptr: PtrWidth) -> RodataLayout {
        let align = ptr.bytes();
        let mut offset = 0;
        let tables = sequence(&self.options)
            .into_iter()
            .map(|kind| {
                offset = round_up(offset, align);
                let data = self.data_bytes(kind, ptr);
                let padding = self.padding(kind, data);
                let placed = TablePlacement {
                    kind,
                    offset,
                    size: data + padding,
                    padding,
                };
                offset += placed.size;
                placed
            })
            .collect();
        RodataLayout {
            tables,
            size: offset,
            align,
        }
    }

    fn rodata_size(&self, ptr: PtrWidth) -> u64 {
        let align = ptr.bytes();
        sequence(&self.options).into_iter().fold(0, |offset, kind| {
            let data = self.data_bytes(kind, ptr);
            round_up(offset, align) + data + self.padding(kind, data)
        })
    }
}
