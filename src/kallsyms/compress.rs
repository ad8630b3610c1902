//! The token-table compression of symbol names, with the kernel tool's exact choices.
//!
//! The kernel's rule: count every adjacent byte pair (overlapping) over all "type + name"
//! strings; for each byte code from 255 down to 0 that no string uses, take the pair with the
//! highest count (ties: lowest `first + 256 * second`), stop if it is 0, otherwise give it that
//! code and replace its occurrences left to right, without overlap, in every string.
//!
//! The result does not depend on string order, so instead of rescanning every string per code
//! (what the kernel does) this keeps, per pair, the list of strings that may contain it, and
//! touches only those. Every pair created by a replacement contains the new code, so the lists
//! stay complete if each affected string is added to the lists of its new pairs.
//! This module knows nothing about output formats.

use rayon::prelude::*;

use super::TableSymbol;
use crate::prefetch;

const PAIRS: usize = 1 << 16;

/// The 256-entry token table: what each byte code of a compressed name stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenTable {
    /// Expansions of codes 0..=255, one after another.
    expanded: Vec<u8>,
    /// `ends[c]`: end of code `c`'s expansion in `expanded`.
    ends: [u32; 256],
}

impl TokenTable {
    /// The text code `c` stands for (empty for unused codes).
    pub fn token(&self, c: u8) -> &[u8] {
        let c = usize::from(c);
        let start = if c == 0 { 0 } else { self.ends[c - 1] as usize };
        &self.expanded[start..self.ends[c] as usize]
    }

    /// `kallsyms_token_index[c]`: offset of code `c`'s string in `kallsyms_token_table`.
    pub fn index(&self, c: u8) -> u32 {
        let start = if c == 0 {
            0
        } else {
            self.ends[usize::from(c) - 1]
        };
        start + u32::from(c)
    }

    /// Size of `kallsyms_token_table`: every expansion plus its terminating NUL.
    pub fn table_bytes(&self) -> u64 {
        u64::from(self.ends[255]) + 256
    }
}

/// Compressed names, concatenated in table order, and the token table.
#[derive(Clone)]
pub(super) struct Compressed {
    pub data: Vec<u8>,
    pub name_ends: Vec<u32>,
    pub tokens: TokenTable,
}

fn pair(a: u8, b: u8) -> usize {
    usize::from(a) | usize::from(b) << 8
}

/// The working state: strings compressed in place inside one buffer.
struct Work {
    buf: Vec<u8>,
    starts: Vec<u32>,
    lens: Vec<u32>,
    counts: Vec<i32>,
}

impl Work {
    fn string(&self, i: usize) -> &[u8] {
        let s = self.starts[i] as usize;
        &self.buf[s..s + self.lens[i] as usize]
    }

    fn prefetch_string(&self, i: usize) {
        if let Some(rest) = self.buf.get(self.starts[i] as usize..) {
            prefetch::prefetch(rest);
        }
    }

    /// Replaces every (a, b) in string `i` by `code`, left to right; false if there was none.
    /// Keeps `counts` in step (only pairs next to a replacement change) and reports the
    /// string's new pairs, which all contain `code`.
    fn replace(
        &mut self,
        i: usize,
        a: u8,
        b: u8,
        code: u8,
        mut new_pair: impl FnMut(usize),
    ) -> bool {
        let start = self.starts[i] as usize;
        let len = self.lens[i] as usize;
        let s = &mut self.buf[start..start + len];
        let Some(first) = find_pair(s, 0, a, b) else {
            return false;
        };
        let counts = &mut self.counts;
        // Bytes from `r` on are still the old string; the new one is written at `w` <= `r`.
        let (mut r, mut w) = (first, first);
        let mut prev_end = usize::MAX;
        loop {
            // A match at `r`. Old pairs that go: the match, the pair on its left unless it was
            // the previous match's right pair, the pair on its right. New pairs: the code with
            // its left neighbour, and with its right one unless that starts another match.
            let follows = r + 2 < len;
            let next_matches = r + 3 < len && s[r + 2] == a && s[r + 3] == b;
            counts[pair(a, b)] -= 1;
            if w > 0 && prev_end != r {
                counts[pair(s[w - 1], a)] -= 1;
            }
            if follows {
                counts[pair(b, s[r + 2])] -= 1;
            }
            s[w] = code;
            if w > 0 {
                let p = pair(s[w - 1], code);
                counts[p] += 1;
                new_pair(p);
            }
            if follows && !next_matches {
                let p = pair(code, s[r + 2]);
                counts[p] += 1;
                new_pair(p);
            }
            r += 2;
            w += 1;
            prev_end = r;
            let next = find_pair(s, r, a, b).unwrap_or(len);
            s.copy_within(r..next, w);
            w += next - r;
            r = next;
            if r == len {
                break;
            }
        }
        self.lens[i] = w as u32;
        true
    }
}

/// Position of the first `(a, b)` in `s` at or after `from`, eight positions at a time.
fn find_pair(s: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let (pa, pb) = (LO * u64::from(a), LO * u64::from(b));
    // Flags the positions of a chunk (bytes c..c+8, each with its successor) holding the pair,
    // ignoring its first `skip` positions. The lowest flag is exact: the zero-byte test only
    // errs above a real zero byte, and skipped positions are made non-zero before the test.
    let flags = |c: usize, skip: usize| {
        let word = |k: usize| u64::from_le_bytes(s[k..k + 8].try_into().unwrap_or([0; 8]));
        let z = (word(c) ^ pa) | (word(c + 1) ^ pb) | ((1u64 << (8 * skip)) - 1);
        z.wrapping_sub(LO) & !z & HI
    };
    let len = s.len();
    let mut i = from;
    while i + 9 <= len {
        let t = flags(i, 0);
        if t != 0 {
            return Some(i + t.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    if i + 1 >= len {
        return None;
    }
    if len >= 9 {
        // The last full chunk overlaps what was checked; skip its positions before `i`
        // (fewer than 8 of them, since `i + 9 > len`).
        let c = len - 9;
        let t = flags(c, i - c);
        return (t != 0).then(|| c + t.trailing_zeros() as usize / 8);
    }
    (i..len - 1).find(|&k| s[k] == a && s[k + 1] == b)
}

/// The pairs whose count may be non-zero, so that finding the best pair does not scan all
/// 65536 counts each round.
struct Active {
    pairs: Vec<u16>,
    member: Vec<bool>,
}

impl Active {
    fn add(&mut self, p: usize) {
        if !self.member[p] {
            self.member[p] = true;
            self.pairs.push(p as u16);
        }
    }

    /// Drops pairs whose count reached zero (counts of existing pairs only fall).
    fn prune(&mut self, counts: &[i32]) {
        let mut k = 0;
        while k < self.pairs.len() {
            let p = usize::from(self.pairs[k]);
            if counts[p] == 0 {
                self.member[p] = false;
                self.pairs.swap_remove(k);
            } else {
                k += 1;
            }
        }
    }
}

/// Pair → strings of the original set that contain it, in compressed-sparse-row form (a
/// string once per occurrence). Per-pair arrays are zero-initialised, so only pairs that
/// occur cost anything.
struct Initial {
    start: Vec<u32>,
    end: Vec<u32>,
    items: Vec<u32>,
}

impl Initial {
    /// Counts all pairs into `work.counts`, lists the pairs that occur, and builds the lists.
    fn build(work: &mut Work) -> (Initial, Active) {
        let n = work.starts.len();
        let mut active = Active {
            pairs: Vec::new(),
            member: vec![false; PAIRS],
        };
        for i in 0..n {
            let s = work.starts[i] as usize;
            for w in work.buf[s..s + work.lens[i] as usize].windows(2) {
                let p = pair(w[0], w[1]);
                work.counts[p] += 1;
                active.add(p);
            }
        }
        let mut start = vec![0u32; PAIRS];
        let mut end = vec![0u32; PAIRS];
        let mut total = 0;
        for &p in &active.pairs {
            let p = usize::from(p);
            start[p] = total;
            end[p] = total;
            total += work.counts[p] as u32;
        }
        let mut items = vec![0u32; total as usize];
        for i in 0..n {
            for w in work.string(i).windows(2) {
                let p = pair(w[0], w[1]);
                items[end[p] as usize] = i as u32;
                end[p] += 1;
            }
        }
        (Initial { start, end, items }, active)
    }

    fn list(&self, p: usize) -> &[u32] {
        &self.items[self.start[p] as usize..self.end[p] as usize]
    }
}

/// Pair → strings that gained it through a replacement (such pairs contain a new code).
struct Later {
    slot: Vec<u32>,
    lists: Vec<Vec<u32>>,
}

impl Later {
    /// Notes that string `i` now contains pair `p`.
    fn push(&mut self, p: usize, i: u32) {
        if self.slot[p] == 0 {
            self.lists.push(Vec::new());
            self.slot[p] = self.lists.len() as u32;
        }
        let list = &mut self.lists[self.slot[p] as usize - 1];
        if list.last() != Some(&i) {
            list.push(i);
        }
    }

    /// Takes the strings noted for `p`.
    fn take(&mut self, p: usize) -> Vec<u32> {
        match self.slot[p] {
            0 => Vec::new(),
            k => std::mem::take(&mut self.lists[k as usize - 1]),
        }
    }
}

/// Strings of one compression: a shard of the names with its own pair counts and lists.
/// A round's choice depends only on the counts summed over all shards, and a replacement in
/// one string touches nothing outside it, so the shards run their rounds side by side and
/// the result is the same for any split.
struct Shard {
    work: Work,
    initial: Initial,
    active: Active,
    later: Later,
    /// The last round (code) each string was visited in.
    seen_round: Vec<u32>,
    /// Byte values the shard's strings use.
    used: [bool; 256],
}

impl Shard {
    fn new(syms: &[TableSymbol<'_>]) -> Shard {
        let total: usize = syms.iter().map(|s| s.name.len() + 1).sum();
        let mut work = Work {
            buf: Vec::with_capacity(total),
            starts: Vec::with_capacity(syms.len()),
            lens: Vec::with_capacity(syms.len()),
            counts: vec![0; PAIRS],
        };
        for s in syms {
            work.starts.push(work.buf.len() as u32);
            work.lens.push(s.name.len() as u32 + 1);
            work.buf.push(s.kind);
            work.buf.extend_from_slice(s.name);
        }
        let mut used = [false; 256];
        for &c in &work.buf {
            used[usize::from(c)] = true;
        }
        let (initial, active) = Initial::build(&mut work);
        Shard {
            work,
            initial,
            active,
            later: Later {
                slot: vec![0; PAIRS],
                lists: Vec::new(),
            },
            seen_round: vec![u32::MAX; syms.len()],
            used,
        }
    }

    /// Replaces pair `best` by `code` in every string of the shard that holds it.
    fn replace_all(&mut self, best: usize, code: u8) {
        let (a, b) = ((best & 0xff) as u8, (best >> 8) as u8);
        let added = self.later.take(best);
        let round = u32::from(code);
        let Shard {
            work,
            initial,
            active,
            later,
            seen_round,
            ..
        } = self;
        for list in [initial.list(best), &added] {
            for (k, &i) in list.iter().enumerate() {
                // The strings of a list lie all over the buffer: start loading one ahead.
                if let Some(&ahead) = list.get(k + prefetch::DISTANCE) {
                    work.prefetch_string(ahead as usize);
                }
                let i = i as usize;
                if seen_round[i] == round {
                    continue;
                }
                seen_round[i] = round;
                work.replace(i, a, b, code, |p| {
                    active.add(p);
                    later.push(p, i as u32);
                });
            }
        }
    }
}

/// The kernel's choice over all shards: highest total count, ties to the lowest pair value;
/// `None` once every count is zero.
fn best_pair(shards: &mut [Shard]) -> Option<usize> {
    for shard in shards.iter_mut() {
        shard.active.prune(&shard.work.counts);
    }
    let mut best: Option<(i64, usize)> = None;
    for (k, shard) in shards.iter().enumerate() {
        for &p in &shard.active.pairs {
            let p = usize::from(p);
            // A pair with a count in an earlier shard is on that shard's list: seen already.
            if shards[..k].iter().any(|e| e.work.counts[p] > 0) {
                continue;
            }
            let c: i64 = shards[k..]
                .iter()
                .map(|s| i64::from(s.work.counts[p]))
                .sum();
            if best.is_none_or(|(bc, bp)| c > bc || (c == bc && p < bp)) {
                best = Some((c, p));
            }
        }
    }
    best.map(|(_, p)| p)
}

/// Name bytes per shard below which splitting costs more than it saves.
const MIN_SHARD_BYTES: usize = 1 << 17;

/// Compresses the names of `syms` ("type + name" each) exactly as the kernel tool does.
pub(super) fn compress(syms: &[TableSymbol<'_>]) -> Compressed {
    let total: usize = syms.iter().map(|s| s.name.len() + 1).sum();
    let shard_count = rayon::current_num_threads().min(total / MIN_SHARD_BYTES);
    compress_in_shards(syms, shard_count)
}

/// [`compress`] with the strings split into `shard_count` shards (at least one).
fn compress_in_shards(syms: &[TableSymbol<'_>], shard_count: usize) -> Compressed {
    let total: usize = syms.iter().map(|s| s.name.len() + 1).sum();
    let shard_count = shard_count.max(1);
    let per_shard = syms.len().div_ceil(shard_count).max(1);
    let mut shards: Vec<Shard> = syms.par_chunks(per_shard).map(Shard::new).collect();
    let mut used = [false; 256];
    for shard in &shards {
        for (u, &s) in used.iter_mut().zip(&shard.used) {
            *u |= s;
        }
    }
    let mut table = [[0u8; 2]; 256];
    let mut lens = [0u8; 256];
    for c in 0..256 {
        if used[c] {
            table[c] = [c as u8, 0];
            lens[c] = 1;
        }
    }

    for code in (0..=255u8).rev() {
        if used[usize::from(code)] {
            continue;
        }
        let Some(best) = best_pair(&mut shards) else {
            break;
        };
        table[usize::from(code)] = [(best & 0xff) as u8, (best >> 8) as u8];
        lens[usize::from(code)] = 2;
        if let [shard] = shards.as_mut_slice() {
            shard.replace_all(best, code);
        } else {
            shards
                .par_iter_mut()
                .for_each(|shard| shard.replace_all(best, code));
        }
    }

    let mut data = Vec::with_capacity(total);
    let mut name_ends = Vec::with_capacity(syms.len());
    for shard in &shards {
        for i in 0..shard.work.starts.len() {
            data.extend_from_slice(shard.work.string(i));
            name_ends.push(data.len() as u32);
        }
    }
    Compressed {
        data,
        name_ends,
        tokens: expand_tokens(&table, &lens),
    }
}

/// Expands every code to the text it stands for (`expand_symbol` on each table entry).
fn expand_tokens(table: &[[u8; 2]; 256], lens: &[u8; 256]) -> TokenTable {
    let mut text: Vec<Vec<u8>> = (0..256)
        .map(|c| {
            if lens[c] == 1 {
                vec![c as u8]
            } else {
                Vec::new()
            }
        })
        .collect();
    // A two-byte entry only refers to used bytes or to codes assigned before it, and codes are
    // assigned from 255 downwards, so expanding from 255 down finds its parts ready.
    for c in (0..256).rev() {
        if lens[c] == 2 {
            let [x, y] = table[c];
            let mut t = text[usize::from(x)].clone();
            t.extend_from_slice(&text[usize::from(y)]);
            text[c] = t;
        }
    }
    let mut expanded = Vec::new();
    let mut ends = [0u32; 256];
    for c in 0..256 {
        expanded.extend_from_slice(&text[c]);
        ends[c] = expanded.len() as u32;
    }
    TokenTable { expanded, ends }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &'static str) -> TableSymbol<'static> {
        TableSymbol {
            addr: 0,
            kind: b't',
            name: name.as_bytes(),
            absolute: false,
            line: 0,
        }
    }

    fn expand(c: &Compressed, i: usize) -> Vec<u8> {
        let start = if i == 0 {
            0
        } else {
            c.name_ends[i - 1] as usize
        };
        c.data[start..c.name_ends[i] as usize]
            .iter()
            .flat_map(|&b| c.tokens.token(b).to_vec())
            .collect()
    }

    #[test]
    fn round_trips_and_prefers_frequent_pairs() {
        let syms = [sym("aaaa"), sym("abab"), sym("ba")];
        let c = compress(&syms);
        for (i, s) in syms.iter().enumerate() {
            let mut want = vec![s.kind];
            want.extend_from_slice(s.name);
            assert_eq!(expand(&c, i), want);
        }
        // Overlapping counts: "aa" occurs 3 times in "taaaa", more than any other pair.
        assert_eq!(c.tokens.token(255), b"aa");
    }

    #[test]
    fn ties_go_to_the_lowest_pair_value() {
        // "tab" and "tba": every pair occurs once; "ba" = 'b' + 256 * 'a' is the lowest.
        let c = compress(&[sym("ab"), sym("ba")]);
        assert_eq!(c.tokens.token(255), b"ba");
    }

    #[test]
    fn empty_input_gives_empty_tokens() {
        let c = compress(&[]);
        assert_eq!(c.tokens.table_bytes(), 256);
        assert_eq!(c.tokens.index(255), 255);
    }
}

#[cfg(test)]
mod reference {
    //! The kernel's algorithm written plainly (rescan everything each round), to check the
    //! indexed compressor against.
    use super::*;

    fn naive(strings: &[Vec<u8>]) -> (Vec<Vec<u8>>, [[u8; 2]; 256], [u8; 256]) {
        use std::collections::BTreeMap;
        let mut strings = strings.to_vec();
        // Pair → count, in pair order; a strict `>` scan keeps the lowest pair on ties.
        let mut counts: BTreeMap<usize, i64> = BTreeMap::new();
        let mut used = [false; 256];
        for s in &strings {
            for w in s.windows(2) {
                *counts.entry(pair(w[0], w[1])).or_default() += 1;
            }
            for &c in s {
                used[usize::from(c)] = true;
            }
        }
        let mut table = [[0u8; 2]; 256];
        let mut lens = [0u8; 256];
        for c in 0..256 {
            if used[c] {
                table[c] = [c as u8, 0];
                lens[c] = 1;
            }
        }
        for code in (0..=255u8).rev() {
            if used[usize::from(code)] {
                continue;
            }
            let mut best = (0, 0);
            for (&p, &c) in &counts {
                if c > best.1 {
                    best = (p, c);
                }
            }
            if best.1 == 0 {
                break;
            }
            let (a, b) = ((best.0 & 0xff) as u8, (best.0 >> 8) as u8);
            table[usize::from(code)] = [a, b];
            lens[usize::from(code)] = 2;
            for s in &mut strings {
                if !s.windows(2).any(|w| w == [a, b]) {
                    continue;
                }
                for w in s.windows(2) {
                    *counts.entry(pair(w[0], w[1])).or_default() -= 1;
                }
                let mut out = Vec::new();
                let mut r = 0;
                while r < s.len() {
                    if r + 1 < s.len() && s[r] == a && s[r + 1] == b {
                        out.push(code);
                        r += 2;
                    } else {
                        out.push(s[r]);
                        r += 1;
                    }
                }
                *s = out;
                for w in s.windows(2) {
                    *counts.entry(pair(w[0], w[1])).or_default() += 1;
                }
            }
        }
        (strings, table, lens)
    }

    fn check(names: &[Vec<u8>]) {
        let syms: Vec<TableSymbol<'_>> = names
            .iter()
            .map(|n| TableSymbol {
                addr: 0,
                kind: n[0],
                name: &n[1..],
                absolute: false,
                line: 0,
            })
            .collect();
        let got = compress_in_shards(&syms, 1 + names.len() % 3);
        let (want, table, lens) = naive(names);
        assert_eq!(
            got.tokens,
            expand_tokens(&table, &lens),
            "token tables differ"
        );
        let mut start = 0;
        for (i, w) in want.iter().enumerate() {
            let end = got.name_ends[i] as usize;
            assert_eq!(&got.data[start..end], &w[..], "string {i}");
            start = end;
        }
    }

    #[test]
    fn indexed_compressor_matches_the_plain_one() {
        let mut state = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..300 {
            let alphabet = 2 + next() % if case % 2 == 0 { 6 } else { 250 };
            let count = 1 + next() % 40;
            let names: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    let len = 2 + next() % 30;
                    (0..len).map(|_| (1 + next() % alphabet) as u8).collect()
                })
                .collect();
            check(&names);
        }
    }
}
