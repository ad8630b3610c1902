//! The assembly text of the tables, byte for byte as each version's tool prints it
//! (directives, tabs, comments, `%#x` spellings, blank lines), plus stable-mode padding.
//!
//! Formats already computed [`Tables`]; it decides nothing about content. Numbers are
//! formatted by hand into one buffer because the output runs to tens of megabytes.

use std::io::{self, Write};

use super::size::{TableKind, sequence};
use super::{Tables, Version};

const HEADER: &[u8] = b"#include <asm/bitsperlong.h>\n\
#if BITS_PER_LONG == 64\n\
#define PTR .quad\n\
#define ALGN .balign 8\n\
#else\n\
#define PTR .long\n\
#define ALGN .balign 4\n\
#endif\n\
\t.section .rodata, \"a\"\n";

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Flush to the writer once this much text is buffered.
const CHUNK: usize = 1 << 16;

/// A text buffer with the handful of printf conversions the tool uses.
struct Out<W: Write> {
    buf: Vec<u8>,
    sink: W,
}

impl<W: Write> Out<W> {
    fn put(&mut self, s: &[u8]) {
        self.buf.extend_from_slice(s);
    }

    /// `0x%02x`
    fn byte(&mut self, b: u8) {
        self.buf.extend_from_slice(&[
            b'0',
            b'x',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 15)],
        ]);
    }

    /// `%u` / `%d` of a non-negative value.
    fn dec(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.buf.extend_from_slice(&digits[i..]);
    }

    /// `%#x` / `%#llx`: `0` for zero, otherwise `0x` and lowercase digits.
    fn alt_hex(&mut self, v: u64) {
        if v == 0 {
            self.buf.push(b'0');
            return;
        }
        let mut digits = [0u8; 16];
        let mut i = digits.len();
        let mut v = v;
        while v != 0 {
            i -= 1;
            digits[i] = HEX[(v & 15) as usize];
            v >>= 4;
        }
        self.buf.extend_from_slice(b"0x");
        self.buf.extend_from_slice(&digits[i..]);
    }

    fn label(&mut self, kind: TableKind) {
        let label = kind.label().as_bytes();
        self.put(b".globl ");
        self.put(label);
        self.put(b"\n\tALGN\n");
        self.put(label);
        self.put(b":\n");
    }

    /// 6.1's `output_address`: a `PTR` relative to `_text`.
    fn text_relative(&mut self, text: u64, addr: u64) {
        if text <= addr {
            self.put(b"\tPTR\t_text + ");
            self.alt_hex(addr - text);
        } else {
            self.put(b"\tPTR\t_text - ");
            self.alt_hex(text - addr);
        }
        self.put(b"\n");
    }

    /// ` /* Tname */` comment of 6.12's names, offsets and seqs.
    fn comment(&mut self, kind: u8, name: &[u8]) {
        self.put(b"\t/* ");
        self.buf.push(kind);
        self.put(name);
        self.put(b" */\n");
    }

    fn pad(&mut self, bytes: u64) {
        if bytes > 0 {
            self.put(b"\t.zero\t");
            self.dec(bytes);
            self.put(b"\n");
        }
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.sink.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }
}

impl Tables<'_> {
    /// Writes the assembly the kernel tool would print (plus padding in stable mode).
    pub fn write_asm<W: Write>(&self, sink: W) -> io::Result<()> {
        let mut out = Out {
            buf: Vec::with_capacity(CHUNK * 2),
            sink,
        };
        out.put(HEADER);
        for kind in sequence(&self.options) {
            out.label(kind);
            let (bits32, bits64) = self.emit_table(&mut out, kind)?;
            let (pad32, pad64) = (self.padding(kind, bits32), self.padding(kind, bits64));
            if pad32 == pad64 {
                out.pad(pad32);
            } else {
                out.put(b"#if BITS_PER_LONG == 64\n");
                out.pad(pad64);
                out.put(b"#else\n");
                out.pad(pad32);
                out.put(b"#endif\n");
            }
            out.put(b"\n");
        }
        out.sink.write_all(&out.buf)?;
        out.sink.flush()
    }

    /// Prints one table's entries; returns their size in bytes for 32- and 64-bit `PTR`.
    fn emit_table<W: Write>(&self, out: &mut Out<W>, kind: TableKind) -> io::Result<(u64, u64)> {
        let comments = self.options.version == Version::V6_12;
        let n = self.syms.len() as u64;
        let bytes = match kind {
            TableKind::NumSyms => {
                out.put(b"\t.long\t");
                out.dec(n);
                out.put(b"\n");
                4
            }
            TableKind::Names => {
                let mut total = 0;
                for (i, sym) in self.syms.iter().enumerate() {
                    let data = self.compressed_name(i);
                    let len = data.len();
                    out.put(b"\t.byte ");
                    if len <= 0x7f {
                        out.byte(len as u8);
                        total += len as u64 + 1;
                    } else {
                        out.byte((len & 0x7f) as u8 | 0x80);
                        out.put(b", ");
                        out.byte((len >> 7 & 0x7f) as u8);
                        total += len as u64 + 2;
                    }
                    for &b in data {
                        out.put(b", ");
                        out.byte(b);
                    }
                    if comments {
                        out.comment(sym.kind, sym.name);
                    } else {
                        out.put(b"\n");
                    }
                    out.maybe_flush()?;
                }
                total
            }
            TableKind::Markers => {
                let mut off = 0u32;
                let mut count = 0;
                for i in 0..self.syms.len() {
                    if i & 0xff == 0 {
                        out.put(b"\t.long\t");
                        out.dec(u64::from(off));
                        out.put(b"\n");
                        count += 1;
                    }
                    let len = self.compressed_name(i).len() as u32;
                    off = off.wrapping_add(len + if len <= 0x7f { 1 } else { 2 });
                }
                count * 4
            }
            TableKind::TokenTable => {
                for c in 0..=255u8 {
                    out.put(b"\t.asciz\t\"");
                    out.put(self.tokens.token(c));
                    out.put(b"\"\n");
                }
                self.tokens.table_bytes()
            }
            TableKind::TokenIndex => {
                for c in 0..=255u8 {
                    out.put(b"\t.short\t");
                    out.dec(u64::from(self.tokens.index(c)));
                    out.put(b"\n");
                }
                512
            }
            TableKind::Offsets => {
                for (sym, &offset) in self.syms.iter().zip(&self.offsets) {
                    out.put(b"\t.long\t");
                    out.alt_hex(u64::from(offset));
                    if comments {
                        out.comment(sym.kind, sym.name);
                    } else {
                        out.put(b"\n");
                    }
                    out.maybe_flush()?;
                }
                n * 4
            }
            TableKind::Addresses => {
                for sym in &self.syms {
                    if sym.absolute {
                        out.put(b"\tPTR\t");
                        out.alt_hex(sym.addr);
                        out.put(b"\n");
                    } else {
                        out.text_relative(self.text_addr, sym.addr);
                    }
                    out.maybe_flush()?;
                }
                return Ok((n * 4, n * 8));
            }
            TableKind::RelativeBase => {
                out.text_relative(self.text_addr, self.relative_base);
                return Ok((4, 8));
            }
            TableKind::SeqsOfNames => {
                for &i in &self.name_order {
                    out.put(b"\t.byte ");
                    out.byte((i >> 16) as u8);
                    out.put(b", ");
                    out.byte((i >> 8) as u8);
                    out.put(b", ");
                    out.byte(i as u8);
                    if comments {
                        let sym = &self.syms[i as usize];
                        out.comment(sym.kind, sym.name);
                    } else {
                        out.put(b"\n");
                    }
                    out.maybe_flush()?;
                }
                n * 3
            }
        };
        Ok((bytes, bytes))
    }
}
