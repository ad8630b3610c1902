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
//!
//! A compression can also be recorded ([`Rounds`]): each round's choice with every pair whose
//! count came within one name's reach of it, and the strings at a few early rounds. The same
//! strings plus or minus one (a margin probe moving one symbol across a range boundary) then
//! need no compression when no round would choose otherwise, and otherwise restart from the
//! last recorded state before the first round that does.
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

/// The two bytes of a [`pair`], first one first.
fn pair_bytes(p: usize) -> [u8; 2] {
    [(p & 0xff) as u8, (p >> 8) as u8]
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

/// The pairs a shard has seen, and those it saw first since the ranking last took them.
struct NewPairs {
    seen: Vec<bool>,
    fresh: Vec<u16>,
}

impl NewPairs {
    fn add(&mut self, p: usize) {
        if !self.seen[p] {
            self.seen[p] = true;
            self.fresh.push(p as u16);
        }
    }
}

/// Pair → strings of the original set that contain it, in compressed-sparse-row form (a
/// string once per occurrence, in string order), the lists in pair order: pair `p`'s is
/// `items[start[p]..start[p + 1]]`.
struct Initial {
    start: Vec<u32>,
    items: Vec<u32>,
}

impl Initial {
    /// Counts all pairs into `work.counts`, notes the pairs that occur, and builds the lists.
    fn build(work: &mut Work) -> (Initial, NewPairs) {
        let n = work.starts.len();
        let mut pairs = NewPairs {
            seen: vec![false; PAIRS],
            fresh: Vec::new(),
        };
        for i in 0..n {
            let s = work.starts[i] as usize;
            for w in work.buf[s..s + work.lens[i] as usize].windows(2) {
                let p = pair(w[0], w[1]);
                work.counts[p] += 1;
                pairs.add(p);
            }
        }
        // Each list's end first; filling the lists backwards, from the last string's last
        // pair, moves every bound down to its list's start.
        let mut start = Vec::with_capacity(PAIRS + 1);
        let mut total = 0u32;
        start.extend(work.counts.iter().map(|&c| {
            total += c as u32;
            total
        }));
        start.push(total);
        let mut items = vec![0u32; total as usize];
        for i in (0..n).rev() {
            for w in work.string(i).windows(2).rev() {
                let bound = &mut start[pair(w[0], w[1])];
                *bound -= 1;
                items[*bound as usize] = i as u32;
            }
        }
        (Initial { start, items }, pairs)
    }

    fn list(&self, p: usize) -> &[u32] {
        &self.items[self.start[p] as usize..self.start[p + 1] as usize]
    }
}

/// Pair → strings that gained it through a replacement. The round of code `c` creates only
/// pairs holding `c`, and a pair is created in one round only (that of its later code: the
/// other one did not exist before), so each round appends the new pair (as its bucket in that
/// round, see [`RoundPairs::bucket`]) and the string to a list of its own, which costs no
/// lookup per new pair, and the list is grouped by pair the first time one of its pairs is
/// chosen.
struct Later {
    /// By code.
    rounds: Vec<RoundPairs>,
}

#[derive(Default)]
struct RoundPairs {
    /// Each new pair's bucket (see [`RoundPairs::bucket`]) and string, packed by
    /// [`RoundPairs::pack`], in the order the round created them; emptied when grouped.
    created: Vec<u32>,
    /// After grouping, the strings of bucket `k` (see [`RoundPairs::bucket`]) are
    /// `strings[start[k]..start[k + 1]]`; `start` is empty before.
    strings: Vec<u32>,
    start: Vec<u32>,
}

impl RoundPairs {
    /// Where pair `p`, which holds `code`, goes: `(code, y)` to `y`, `(x, code)` to `256 + x`.
    fn bucket(code: u8, p: u16) -> usize {
        let [first, second] = pair_bytes(usize::from(p));
        if first == code {
            usize::from(second)
        } else {
            256 + usize::from(first)
        }
    }

    /// A bucket (below 512) and a string of a shard (below [`MAX_SHARD_STRINGS`]) in 32 bits.
    fn pack(bucket: usize, string: u32) -> u32 {
        (bucket as u32) << STRING_BITS | string
    }

    fn unpack(packed: u32) -> (usize, u32) {
        (
            (packed >> STRING_BITS) as usize,
            packed & (MAX_SHARD_STRINGS as u32 - 1),
        )
    }

    fn group(&mut self) {
        if !self.start.is_empty() {
            return;
        }
        let mut start = vec![0u32; 513];
        for &packed in &self.created {
            start[Self::unpack(packed).0 + 1] += 1;
        }
        for k in 1..start.len() {
            start[k] += start[k - 1];
        }
        let mut fill = start.clone();
        let mut strings = vec![0u32; self.created.len()];
        for &packed in &self.created {
            let (bucket, i) = Self::unpack(packed);
            let slot = &mut fill[bucket];
            strings[*slot as usize] = i;
            *slot += 1;
        }
        self.created = Vec::new();
        self.strings = strings;
        self.start = start;
    }
}

impl Later {
    fn new() -> Later {
        Later {
            rounds: (0..256).map(|_| RoundPairs::default()).collect(),
        }
    }

    /// Makes room for the pairs the round of `code` can create: two per replacement at most.
    fn reserve(&mut self, code: u8, replacements: usize) {
        self.rounds[usize::from(code)]
            .created
            .reserve_exact(2 * replacements);
    }

    /// Notes that string `i` now contains pair `p`, created in the round of `code`.
    fn push(&mut self, code: u8, p: usize, i: u32) {
        let bucket = RoundPairs::bucket(code, p as u16);
        self.rounds[usize::from(code)]
            .created
            .push(RoundPairs::pack(bucket, i));
    }

    /// The strings noted for `p` (a string may appear more than once).
    fn take(&mut self, p: usize) -> Vec<u32> {
        let [first, second] = pair_bytes(p);
        let mut out = Vec::new();
        let codes: &[u8] = if first == second {
            &[first]
        } else {
            &[first, second]
        };
        for &code in codes {
            let round = &mut self.rounds[usize::from(code)];
            if round.created.is_empty() && round.start.is_empty() {
                continue;
            }
            round.group();
            let k = RoundPairs::bucket(code, p as u16);
            out.extend_from_slice(
                &round.strings[round.start[k] as usize..round.start[k + 1] as usize],
            );
        }
        out
    }
}

/// Strings of one compression: a shard of the names with its own pair counts and lists.
/// A round's choice depends only on the counts summed over all shards, and a replacement in
/// one string touches nothing outside it, so the shards run their rounds side by side and
/// the result is the same for any split.
struct Shard {
    work: Work,
    initial: Initial,
    pairs: NewPairs,
    later: Later,
    /// The last round (code) each string was visited in.
    seen_round: Vec<u32>,
    /// Occurrences of each byte value in the shard's strings.
    bytes: [u64; 256],
}

impl Shard {
    fn new(syms: &[TableSymbol<'_>]) -> Shard {
        let mut buf = Vec::with_capacity(string_bytes(syms));
        let mut lens = Vec::with_capacity(syms.len());
        for s in syms {
            lens.push(s.name.len() as u32 + 1);
            buf.push(s.kind);
            buf.extend_from_slice(s.name);
        }
        Shard::with_strings(buf, lens)
    }

    /// A shard of the strings in `buf`, one after another, `lens` long each; they may hold
    /// codes already (a compression resumed part way).
    fn with_strings(buf: Vec<u8>, lens: Vec<u32>) -> Shard {
        let mut starts = Vec::with_capacity(lens.len());
        let mut at = 0u32;
        for &len in &lens {
            starts.push(at);
            at += len;
        }
        let count = lens.len();
        let mut work = Work {
            buf,
            starts,
            lens,
            counts: vec![0; PAIRS],
        };
        let mut bytes = [0u64; 256];
        for &c in &work.buf {
            bytes[usize::from(c)] += 1;
        }
        let (initial, pairs) = Initial::build(&mut work);
        Shard {
            work,
            initial,
            pairs,
            later: Later::new(),
            seen_round: vec![u32::MAX; count],
            bytes,
        }
    }

    /// Replaces pair `best` by `code` in every string of the shard that holds it.
    fn replace_all(&mut self, best: usize, code: u8) {
        let [a, b] = pair_bytes(best);
        let added = self.later.take(best);
        let occurrences = usize::try_from(self.work.counts[best]).unwrap_or(0);
        self.later.reserve(code, occurrences);
        let round = u32::from(code);
        let Shard {
            work,
            initial,
            pairs,
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
                    pairs.add(p);
                    later.push(code, p, i as u32);
                });
            }
        }
    }
}

/// Every pair with a count, ranked the kernel's way (highest total count over all shards,
/// ties to the lowest pair value), so that a round does not scan every pair. A pair's count
/// rises only in the round that creates it (the round of its later code) and only falls
/// afterwards, so the ranking is lazy: each pair with a count has exactly one entry, which
/// may overstate the count but never understates it, and is corrected when it comes to the
/// top.
struct Ranking {
    /// Entries packed by [`Ranking::entry`]: the heap's maximum is the kernel's choice when
    /// its count is current.
    heap: MaxHeap,
}

impl Ranking {
    /// The ranking of every pair the shards hold.
    fn new(shards: &mut [Shard]) -> Ranking {
        let mut ranking = Ranking {
            heap: MaxHeap::default(),
        };
        ranking.take_fresh(shards);
        ranking
    }

    /// A count and a pair, ordered as the kernel prefers them.
    fn entry(count: i64, p: usize) -> u64 {
        (count as u64) << 16 | (0xffff - p) as u64
    }

    fn unpack(entry: u64) -> (i64, usize) {
        ((entry >> 16) as i64, 0xffff - (entry & 0xffff) as usize)
    }

    /// Ranks the pairs the shards saw first since the last call, at their counts now.
    fn take_fresh(&mut self, shards: &mut [Shard]) {
        let mut fresh = Vec::new();
        for shard in shards.iter_mut() {
            fresh.append(&mut shard.pairs.fresh);
        }
        if shards.len() > 1 {
            fresh.sort_unstable();
            fresh.dedup();
        }
        for p in fresh {
            let p = usize::from(p);
            let count = total_count(shards, p);
            if count > 0 {
                self.heap.push(Ranking::entry(count, p));
            }
        }
    }

    /// Takes out the kernel's choice, with its count; `None` once every count is zero.
    fn take_best(&mut self, shards: &[Shard]) -> Option<(usize, i64)> {
        while let Some(top) = self.heap.pop() {
            let (ranked, p) = Ranking::unpack(top);
            let count = total_count(shards, p);
            debug_assert!(count <= ranked, "a ranking entry understates its pair");
            if count == ranked {
                return Some((p, count));
            }
            if count > 0 {
                self.heap.push(Ranking::entry(count, p));
            }
        }
        None
    }

    /// Every pair still ranked whose count is at least `count` minus `reach` (and not zero),
    /// with its count.
    fn near(&self, shards: &[Shard], count: i64, reach: i64) -> Vec<(u16, i64)> {
        let floor = count - reach;
        let mut near = Vec::new();
        // Entries overstate counts: one ranked at least `floor` may have less now.
        self.heap
            .for_each_at_least(Ranking::entry(floor.max(0), 0xffff), |e| {
                let p = Ranking::unpack(e).1;
                let c = total_count(shards, p);
                if c > 0 && c >= floor {
                    near.push((p as u16, c));
                }
            });
        near
    }

    /// Brings the ranking up to date after the round that chose `best`.
    fn after_round(&mut self, shards: &mut [Shard], best: usize) {
        let left = total_count(shards, best);
        if left > 0 {
            self.heap.push(Ranking::entry(left, best));
        }
        self.take_fresh(shards);
    }
}

/// A binary max-heap in a vector (the children of entry `i` at `2i + 1` and `2i + 2`),
/// written out so that the entries at or above a bound can be visited without looking at
/// the others: below an entry under the bound, every entry is under it too.
#[derive(Default)]
struct MaxHeap(Vec<u64>);

impl MaxHeap {
    fn push(&mut self, entry: u64) {
        let heap = &mut self.0;
        let mut i = heap.len();
        heap.push(entry);
        while i > 0 {
            let parent = (i - 1) / 2;
            if heap[parent] >= entry {
                break;
            }
            heap[i] = heap[parent];
            i = parent;
        }
        heap[i] = entry;
    }

    fn pop(&mut self) -> Option<u64> {
        let heap = &mut self.0;
        let last = heap.pop()?;
        let Some(&top) = heap.first() else {
            return Some(last);
        };
        let n = heap.len();
        let mut i = 0;
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && heap[right] > heap[left] {
                right
            } else {
                left
            };
            if heap[child] <= last {
                break;
            }
            heap[i] = heap[child];
            i = child;
        }
        heap[i] = last;
        Some(top)
    }

    /// Calls `f` with every entry at least `bound`, in no particular order.
    fn for_each_at_least(&self, bound: u64, mut f: impl FnMut(u64)) {
        let heap = &self.0;
        let mut stack = vec![0usize];
        while let Some(i) = stack.pop() {
            match heap.get(i) {
                Some(&entry) if entry >= bound => {
                    f(entry);
                    stack.extend([2 * i + 1, 2 * i + 2]);
                }
                _ => {}
            }
        }
    }
}

/// Pair `p`'s count over all shards.
fn total_count(shards: &[Shard], p: usize) -> i64 {
    shards.iter().map(|s| i64::from(s.work.counts[p])).sum()
}

/// Bits of a string's position in a shard: [`RoundPairs::pack`] keeps a pair's bucket in the
/// others, so a shard holds fewer than 8M strings (a kernel has well under 1M symbols; a
/// bigger input only gets more shards).
const STRING_BITS: u32 = 23;
const MAX_SHARD_STRINGS: usize = 1 << STRING_BITS;

/// Strings per shard for `strings` strings in `shards` shards (at least one each).
fn strings_per_shard(strings: usize, shards: usize) -> usize {
    strings.div_ceil(shards.max(1)).clamp(1, MAX_SHARD_STRINGS)
}

/// Name bytes per shard below which splitting costs more than it saves.
const MIN_SHARD_BYTES: usize = 1 << 16;

/// Compresses the names of `syms` ("type + name" each) exactly as the kernel tool does.
pub(super) fn compress(syms: &[TableSymbol<'_>]) -> Compressed {
    compress_in_shards(syms, shard_count(string_bytes(syms)), None)
}

/// What the compression of `syms` adds to the tables' sizes (`kallsyms_names` bytes, token
/// table bytes), without gathering the compressed names. With `longest_name`, also records
/// what [`Rounds::resume`] needs to add or remove a name of up to that many bytes (with its
/// type, one more); the record costs a fifth to a quarter of the compression's time.
pub(super) fn compressed_sizes(
    syms: &[TableSymbol<'_>],
    longest_name: Option<usize>,
) -> ((u64, u64), Option<Rounds>) {
    let mut rounds = longest_name.map(|longest| Rounds {
        reach: i64::try_from(longest).map_or(MAX_REACH, |n| n.min(MAX_REACH)),
        ..Rounds::default()
    });
    let (shards, tokens) = run_in_shards(syms, shard_count(string_bytes(syms)), rounds.as_mut());
    (table_sizes(&shards, &tokens), rounds)
}

/// Shards for strings of `bytes` bytes in all: one per thread, none below [`MIN_SHARD_BYTES`].
fn shard_count(bytes: usize) -> usize {
    rayon::current_num_threads().min(bytes / MIN_SHARD_BYTES)
}

/// Bytes of the "type + name" strings of `syms`.
fn string_bytes(syms: &[TableSymbol<'_>]) -> usize {
    syms.iter().map(|s| s.name.len() + 1).sum()
}

/// [`compress`] with the strings split into `shard_count` shards (at least one).
fn compress_in_shards(
    syms: &[TableSymbol<'_>],
    shard_count: usize,
    record: Option<&mut Rounds>,
) -> Compressed {
    let (shards, tokens) = run_in_shards(syms, shard_count, record);
    finish(&shards, &tokens)
}

/// Every round of the compression of `syms`, in `shard_count` shards (at least one): the
/// strings as the rounds left them and the token table.
fn run_in_shards(
    syms: &[TableSymbol<'_>],
    shard_count: usize,
    mut record: Option<&mut Rounds>,
) -> (Vec<Shard>, Tokens) {
    let per_shard = strings_per_shard(syms.len(), shard_count);
    let mut shards: Vec<Shard> = syms.par_chunks(per_shard).map(Shard::new).collect();
    let mut bytes = [0u64; 256];
    for shard in &shards {
        for (total, &n) in bytes.iter_mut().zip(&shard.bytes) {
            *total += n;
        }
    }
    let mut tokens = Tokens::new(&bytes);
    if let Some(rounds) = record.as_deref_mut() {
        rounds.bytes = bytes;
    }
    run_rounds(&mut shards, &mut tokens, 0, record);
    (shards, tokens)
}

/// The token table being built: what each code stands for so far, and the codes the rounds
/// assign, in order (every code no string uses, from 255 down).
struct Tokens {
    table: [[u8; 2]; 256],
    lens: [u8; 256],
    codes: Vec<u8>,
}

impl Tokens {
    fn new(bytes: &[u64; 256]) -> Tokens {
        let mut table = [[0u8; 2]; 256];
        let mut lens = [0u8; 256];
        for c in 0..256 {
            if bytes[c] > 0 {
                table[c] = [c as u8, 0];
                lens[c] = 1;
            }
        }
        let codes = (0..=255u8)
            .rev()
            .filter(|&c| bytes[usize::from(c)] == 0)
            .collect();
        Tokens { table, lens, codes }
    }

    fn assign(&mut self, code: u8, pair: usize) {
        self.table[usize::from(code)] = pair_bytes(pair);
        self.lens[usize::from(code)] = 2;
    }
}

/// Runs the rounds from round `first` (an index into the codes) to the end.
fn run_rounds(
    shards: &mut [Shard],
    tokens: &mut Tokens,
    first: usize,
    mut record: Option<&mut Rounds>,
) {
    let mut ranking = Ranking::new(shards);
    for k in first..tokens.codes.len() {
        let code = tokens.codes[k];
        let recording = record.as_deref().is_some_and(Rounds::complete);
        if let Some(rounds) = record.as_deref_mut()
            && recording
            && CHECKPOINTS.contains(&k)
        {
            rounds.checkpoints.push(Checkpoint::of(k, shards));
        }
        let Some((best, count)) = ranking.take_best(shards) else {
            if let Some(rounds) = record.as_deref_mut() {
                rounds.exhausted = true;
            }
            break;
        };
        if let Some(rounds) = record.as_deref_mut() {
            rounds.push(Round {
                pair: best as u16,
                count,
                near: if recording {
                    ranking.near(shards, count, rounds.reach)
                } else {
                    Vec::new()
                },
                complete: recording,
            });
        }
        tokens.assign(code, best);
        if let [shard] = shards {
            shard.replace_all(best, code);
        } else {
            shards
                .par_iter_mut()
                .for_each(|shard| shard.replace_all(best, code));
        }
        ranking.after_round(shards, best);
    }
}

/// Every string of the shards as it stands, one after another in input order, and their
/// lengths.
fn all_strings(shards: &[Shard]) -> (Vec<u8>, Vec<u32>) {
    let bytes: usize = shards.iter().map(|s| s.work.buf.len()).sum();
    let count: usize = shards.iter().map(|s| s.work.lens.len()).sum();
    let mut data = Vec::with_capacity(bytes);
    let mut lens = Vec::with_capacity(count);
    for shard in shards {
        for i in 0..shard.work.starts.len() {
            data.extend_from_slice(shard.work.string(i));
            lens.push(shard.work.lens[i]);
        }
    }
    (data, lens)
}

fn finish(shards: &[Shard], tokens: &Tokens) -> Compressed {
    let (data, lens) = all_strings(shards);
    let name_ends = lens
        .iter()
        .scan(0u32, |end, &len| {
            *end += len;
            Some(*end)
        })
        .collect();
    Compressed {
        data,
        name_ends,
        tokens: expand_tokens(&tokens.table, &tokens.lens),
    }
}

/// How far one name ("type + name") can move a pair's count: it holds at most its length
/// minus one pairs. A recording keeps, each round, the pairs within reach of the chosen one,
/// for the longest name it may be resumed with, at most this far; a set differing by a
/// longer name is compressed from the start.
const MAX_REACH: i64 = 128;

/// Near pairs a recording keeps at most over all rounds; past this it stops being usable.
const MAX_NEAR_ENTRIES: usize = 1 << 20;

/// Rounds before which a recording keeps every string: a compression of the same strings
/// plus or minus one resumes from the last of these before the first round it changes.
/// The early rounds touch most strings and cost the most.
const CHECKPOINTS: [usize; 4] = [16, 32, 48, 64];

/// One round of a recorded compression.
#[derive(Debug)]
struct Round {
    pair: u16,
    /// The chosen pair's count over all strings.
    count: i64,
    /// Every other pair whose count was within the recording's reach of `count`, with its
    /// count.
    near: Vec<(u16, i64)>,
    /// `near` holds every such pair (the recording had not reached its limit).
    complete: bool,
}

/// Every string of a compression before a given round.
#[derive(Debug)]
struct Checkpoint {
    round: usize,
    /// The strings, one after another, in input order.
    data: Vec<u8>,
    lens: Vec<u32>,
}

impl Checkpoint {
    fn of(round: usize, shards: &[Shard]) -> Checkpoint {
        let (data, lens) = all_strings(shards);
        Checkpoint { round, data, lens }
    }
}

/// A compression's rounds, the byte counts of its strings and some of its intermediate
/// states: enough to compress the same strings plus or minus one without starting over.
#[derive(Debug)]
pub(super) struct Rounds {
    /// How far a name's pairs can move a count (see [`MAX_REACH`]): the longest name a
    /// resumed compression may add or remove, less one.
    reach: i64,
    rounds: Vec<Round>,
    bytes: [u64; 256],
    /// The compression stopped because no pair was left (codes remained).
    exhausted: bool,
    near_entries: usize,
    checkpoints: Vec<Checkpoint>,
}

impl Default for Rounds {
    fn default() -> Self {
        Rounds {
            reach: MAX_REACH,
            rounds: Vec::new(),
            bytes: [0; 256],
            exhausted: false,
            near_entries: 0,
            checkpoints: Vec::new(),
        }
    }
}

/// One string more or less than a recorded compression's, by position in its input.
#[derive(Clone, Copy, Debug)]
pub(super) enum Change<'t> {
    /// `text` ("type + name") inserted before input `at`.
    Added { at: usize, text: &'t [u8] },
    /// Input `at`, whose text is `text`, left out.
    Removed { at: usize, text: &'t [u8] },
}

/// What [`Rounds::resume`] found.
pub(super) enum Resumed {
    /// Every round chooses as recorded: the other strings and the token table are those of
    /// the recorded compression, and the changed string compresses to this many bytes.
    Unchanged { len: usize },
    /// A round chooses differently; the compression, rerun from a checkpoint before it.
    Rerun(Box<Compressed>),
}

impl Rounds {
    fn complete(&self) -> bool {
        self.near_entries < MAX_NEAR_ENTRIES
    }

    fn push(&mut self, round: Round) {
        self.near_entries = self.near_entries.saturating_add(round.near.len());
        self.rounds.push(round);
    }

    /// The compression of the recorded strings with `change`, from the recording: None when
    /// it cannot tell (the change touches the set of bytes used, is too long, or changes a
    /// round before the first checkpoint), and the caller compresses from the start.
    pub fn resume(&self, change: Change<'_>) -> Option<Resumed> {
        let (text, sign) = match change {
            Change::Added { text, .. } => (text, 1),
            Change::Removed { text, .. } => (text, -1),
        };
        if text.len() as i64 - 1 > self.reach {
            return None;
        }
        let mut own_bytes = [0u64; 256];
        for &b in text {
            own_bytes[usize::from(b)] += 1;
        }
        // The set of bytes in use decides which codes the rounds assign.
        let same_bytes = (0..256).all(|b| {
            own_bytes[b] == 0
                || if sign > 0 {
                    self.bytes[b] > 0
                } else {
                    self.bytes[b] > own_bytes[b]
                }
        });
        if !same_bytes {
            return None;
        }
        let codes = Tokens::new(&self.bytes).codes;
        let mut s = text.to_vec();
        let mut at_checkpoint: Vec<(usize, Vec<u8>)> = Vec::new();
        let mut diverges = None;
        for (k, round) in self.rounds.iter().enumerate() {
            if self.checkpoints.iter().any(|c| c.round == k) {
                at_checkpoint.push((k, s.clone()));
            }
            if !round.holds(&s, sign, self.reach) {
                diverges = Some(k);
                break;
            }
            let [a, b] = pair_bytes(usize::from(round.pair));
            s = replace_pair(&s, a, b, *codes.get(k)?);
        }
        let diverges = match diverges {
            None if !(self.exhausted && sign > 0) => {
                return Some(Resumed::Unchanged { len: s.len() });
            }
            None => self.rounds.len(),
            Some(k) => k,
        };
        let (round, own) = at_checkpoint
            .into_iter()
            .rev()
            .find(|(k, _)| *k <= diverges)?;
        let checkpoint = self.checkpoints.iter().find(|c| c.round == round)?;
        Some(Resumed::Rerun(Box::new(
            self.rerun(checkpoint, change, &own)?,
        )))
    }

    /// The compression continued from `checkpoint` with `change` applied to its strings
    /// (`own`: the changed string as it stood there).
    fn rerun(&self, checkpoint: &Checkpoint, change: Change<'_>, own: &[u8]) -> Option<Compressed> {
        let mut strings: Vec<&[u8]> = Vec::with_capacity(checkpoint.lens.len() + 1);
        let mut start = 0usize;
        for &len in &checkpoint.lens {
            strings.push(&checkpoint.data[start..start + len as usize]);
            start += len as usize;
        }
        match change {
            Change::Added { at, .. } if at <= strings.len() => strings.insert(at, own),
            Change::Removed { at, .. } if strings.get(at) == Some(&own) => {
                strings.remove(at);
            }
            _ => return None,
        }
        let total: usize = strings.iter().map(|s| s.len()).sum();
        let per_shard = strings_per_shard(strings.len(), shard_count(total));
        let mut shards: Vec<Shard> = strings
            .par_chunks(per_shard)
            .map(|part| {
                let lens = part.iter().map(|s| s.len() as u32).collect();
                Shard::with_strings(part.concat(), lens)
            })
            .collect();
        let mut tokens = Tokens::new(&self.bytes);
        for (k, round) in self.rounds[..checkpoint.round].iter().enumerate() {
            tokens.assign(tokens.codes[k], usize::from(round.pair));
        }
        run_rounds(&mut shards, &mut tokens, checkpoint.round, None);
        Some(finish(&shards, &tokens))
    }
}

impl Round {
    /// Whether this round chooses as recorded when a string now `s` is added (`sign` 1) to
    /// the strings or taken from them (-1), `reach` being the recording's.
    fn holds(&self, s: &[u8], sign: i64, reach: i64) -> bool {
        if !self.complete {
            return false;
        }
        let mut own: Vec<(usize, i64)> = Vec::new();
        for w in s.windows(2) {
            let p = pair(w[0], w[1]);
            match own.iter_mut().find(|(q, _)| *q == p) {
                Some((_, n)) => *n += 1,
                None => own.push((p, 1)),
            }
        }
        let own_count = |p: usize| own.iter().find(|(q, _)| *q == p).map_or(0, |&(_, n)| n);
        let best = usize::from(self.pair);
        let best_count = self.count + sign * own_count(best);
        if best_count <= 0 {
            return false;
        }
        let beats = |p: usize, c: i64| c > best_count || (c == best_count && p < best);
        if self
            .near
            .iter()
            .any(|&(p, c)| beats(usize::from(p), c + sign * own_count(usize::from(p))))
        {
            return false;
        }
        // A pair of `s` not listed had a count below the best's minus the reach, which `s`
        // cannot make up; or, when that bound is not positive, every pair with a count is
        // listed and an unlisted one had none.
        if self.count <= reach {
            let listed =
                |p: usize| p == best || self.near.iter().any(|&(q, _)| usize::from(q) == p);
            if own.iter().any(|&(p, n)| !listed(p) && beats(p, sign * n)) {
                return false;
            }
        }
        true
    }
}

/// `s` with every `(a, b)` replaced by `code`, left to right, without overlap.
fn replace_pair(s: &[u8], a: u8, b: u8, code: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
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
    out
}

/// `kallsyms_names` bytes and token table bytes of the compression the shards and tokens
/// hold: what [`finish`] would give, by lengths alone.
fn table_sizes(shards: &[Shard], tokens: &Tokens) -> (u64, u64) {
    let names = shards
        .iter()
        .flat_map(|shard| &shard.work.lens)
        .map(|&len| super::size::entry_bytes(len as usize))
        .sum();
    let mut token_lens: [u64; 256] = std::array::from_fn(|c| u64::from(tokens.lens[c] == 1));
    // Codes are assigned from 255 downwards, each from used bytes or earlier codes (see
    // `expand_tokens`).
    for c in (0..256).rev() {
        if tokens.lens[c] == 2 {
            let [x, y] = tokens.table[c];
            token_lens[c] = token_lens[usize::from(x)] + token_lens[usize::from(y)];
        }
    }
    // Each expansion ends in a NUL.
    (names, token_lens.iter().sum::<u64>() + 256)
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
    fn shards_hold_no_more_strings_than_a_packed_position_names() {
        assert_eq!(strings_per_shard(10, 0), 10);
        assert_eq!(strings_per_shard(0, 2), 1);
        assert_eq!(strings_per_shard(7, 2), 4);
        assert_eq!(
            strings_per_shard(3 * MAX_SHARD_STRINGS, 2),
            MAX_SHARD_STRINGS
        );
        for (bucket, string) in [(0, 0), (511, MAX_SHARD_STRINGS as u32 - 1), (256, 12345)] {
            assert_eq!(
                RoundPairs::unpack(RoundPairs::pack(bucket, string)),
                (bucket, string)
            );
        }
    }

    #[test]
    fn max_heap_pops_in_order_and_visits_what_reaches_a_bound() {
        let mut next = crate::test_rng::xorshift(0x5eed_0f4e_a9b1);
        let mut heap = MaxHeap::default();
        let mut model: Vec<u64> = Vec::new();
        for step in 0..4000 {
            if step % 3 == 2 {
                model.sort_unstable();
                assert_eq!(heap.pop(), model.pop(), "step {step}");
            } else {
                let entry = next() % 500;
                heap.push(entry);
                model.push(entry);
            }
            if step % 97 == 0 {
                let bound = next() % 520;
                let mut seen = Vec::new();
                heap.for_each_at_least(bound, |e| seen.push(e));
                seen.sort_unstable();
                let mut want: Vec<u64> = model.iter().copied().filter(|&e| e >= bound).collect();
                want.sort_unstable();
                assert_eq!(seen, want, "step {step}, bound {bound}");
            }
        }
        model.sort_unstable();
        while let Some(top) = heap.pop() {
            assert_eq!(Some(top), model.pop());
        }
        assert!(model.is_empty());
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
    use crate::test_rng::xorshift;

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
                *s = replace_pair(s, a, b, code);
                for w in s.windows(2) {
                    *counts.entry(pair(w[0], w[1])).or_default() += 1;
                }
            }
        }
        (strings, table, lens)
    }

    fn check(names: &[Vec<u8>]) {
        let got = compress_in_shards(&table_syms(names), 1 + names.len() % 3, None);
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

    fn table_syms(names: &[Vec<u8>]) -> Vec<TableSymbol<'_>> {
        names
            .iter()
            .map(|n| TableSymbol {
                addr: 0,
                kind: n[0],
                name: &n[1..],
                absolute: false,
                line: 0,
            })
            .collect()
    }

    fn lengths(c: &Compressed) -> Vec<u32> {
        let mut prev = 0;
        c.name_ends
            .iter()
            .map(|&end| {
                let len = end - prev;
                prev = end;
                len
            })
            .collect()
    }

    /// Checks a resumed compression of `names` with `change` against compressing `changed`
    /// (`names` with the change made) from the start; returns how it was resumed.
    fn check_resumed(
        base: &Compressed,
        rounds: &Rounds,
        change: Change<'_>,
        changed: &[Vec<u8>],
        case: usize,
    ) -> Option<bool> {
        let resumed = rounds.resume(change)?;
        let full = compress_in_shards(&table_syms(changed), 1 + case % 3, None);
        match resumed {
            Resumed::Unchanged { len } => {
                assert_eq!(full.tokens, base.tokens, "case {case}: tokens");
                let (mut want, got) = (lengths(base), lengths(&full));
                match change {
                    Change::Added { at, .. } => want.insert(at, len as u32),
                    Change::Removed { at, .. } => {
                        assert_eq!(want.remove(at), len as u32, "case {case}: removed");
                    }
                }
                assert_eq!(got, want, "case {case}: lengths");
                Some(true)
            }
            Resumed::Rerun(rerun) => {
                assert_eq!(rerun.tokens, full.tokens, "case {case}: tokens");
                assert_eq!(rerun.data, full.data, "case {case}: strings");
                assert_eq!(rerun.name_ends, full.name_ends, "case {case}: ends");
                Some(false)
            }
        }
    }

    #[test]
    fn resumed_compressions_match_full_ones() {
        const CASES: usize = 150;
        let mut next = xorshift(0x0bad_cafe_1234_5678);
        let (mut unchanged, mut reruns) = (0, 0);
        for case in 0..CASES {
            // Kernel-like names: a few words of a small vocabulary joined by underscores.
            let words: Vec<Vec<u8>> = (0..8 + next() % 40)
                .map(|_| {
                    (0..2 + next() % 6)
                        .map(|_| b'a' + (next() % 26) as u8)
                        .collect()
                })
                .collect();
            let count = 200 + next() % 2500;
            let names: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    let mut name = vec![if next().is_multiple_of(3) { b'T' } else { b't' }];
                    for w in 0..1 + next() % 4 {
                        if w > 0 {
                            name.push(b'_');
                        }
                        name.extend_from_slice(&words[(next() % words.len() as u64) as usize]);
                    }
                    name
                })
                .collect();
            let at = (next() % count) as usize;
            // Half the recordings keep only what the longest name can reach (as the pass
            // simulator's do), the others as much as any name can.
            let longest = names.iter().map(|n| n.len() as i64 - 1).max().unwrap_or(0);
            let reach = if case % 2 == 0 { longest } else { MAX_REACH };
            let mut rounds = Rounds {
                reach,
                ..Rounds::default()
            };
            let whole = compress_in_shards(&table_syms(&names), 1 + case % 3, Some(&mut rounds));
            let mut rest = names.clone();
            let gone = rest.remove(at);
            let removed = Change::Removed { at, text: &gone };
            let mut rest_rounds = Rounds {
                reach,
                ..Rounds::default()
            };
            let base = compress_in_shards(&table_syms(&rest), 1 + case % 2, Some(&mut rest_rounds));
            let added = Change::Added { at, text: &gone };
            for outcome in [
                check_resumed(&whole, &rounds, removed, &rest, case),
                check_resumed(&base, &rest_rounds, added, &names, case),
            ]
            .into_iter()
            .flatten()
            {
                if outcome {
                    unchanged += 1;
                } else {
                    reruns += 1;
                }
            }
        }
        println!(
            "{unchanged} unchanged, {reruns} reruns of {} changes",
            2 * CASES
        );
        // Both ways of resuming must have been taken often enough to be tested.
        assert!(
            unchanged >= 10 && reruns >= 50,
            "{unchanged} unchanged, {reruns} reruns"
        );
    }

    #[test]
    fn sizes_alone_match_the_gathered_compression() {
        let mut next = xorshift(0x5a1e_5b0d_7e11_0042);
        for case in 0..100 {
            let count = 1 + next() % 600;
            let names: Vec<Vec<u8>> = (0..count)
                .map(|_| {
                    let len = 2 + next() % if case % 4 == 0 { 200 } else { 24 };
                    (0..len).map(|_| b'a' + (next() % 12) as u8).collect()
                })
                .collect();
            let syms = table_syms(&names);
            let whole = compress(&syms);
            let want = (
                super::super::size::names_bytes(&whole.name_ends),
                whole.tokens.table_bytes(),
            );
            for record in [Some(200), None] {
                let (sizes, rounds) = compressed_sizes(&syms, record);
                assert_eq!(sizes, want, "case {case}");
                assert_eq!(rounds.is_some(), record.is_some());
            }
        }
    }

    #[test]
    fn indexed_compressor_matches_the_plain_one() {
        let mut next = xorshift(0x1234_5678_9abc_def0);
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
