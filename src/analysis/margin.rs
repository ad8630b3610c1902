//! How close a build is to a kallsyms flip: how many bytes the tables may grow or shrink
//! before the tables built from the link change size, and whether such a flip feeds back.
//!
//! Owns the exact search: candidate sizes come from the script's variable coincidences (the
//! symbol, the ALIGN boundary it may equal, and its address in the current build); every
//! candidate is checked by laying the link out again with tables of that size, and the first
//! flip is pinned down by bisection. No size is sampled blindly.

use serde::Serialize;

use super::hazards::{Hazard, Site};
use super::passes::{PassError, PassOptions, PassReport, Simulator, with_simulator};
use crate::kallsyms::RodataLayout;
use crate::report::{Finding, Place};
use crate::script::ast::Span;
use crate::simulate::LinkSession;

/// A flip of the tables at a given change of their size.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Flip {
    /// Change of the tables' `.rodata` size (bytes, negative: shrink) at which it happens.
    pub at: i64,
    /// Change of the tables' size it causes.
    pub tables_delta: i64,
    /// The coincidence that flips (symbols and boundary).
    pub cause: String,
    /// Tables of the flipped size do not reproduce themselves: consecutive passes disagree.
    pub feeds_back: bool,
}

/// Margins of the current build.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Margins {
    /// The tables' `.rodata` size in the final link.
    pub tables_size: u64,
    /// Bytes the tables may grow without any flip (None: no flip at any coincidence).
    pub grow: Option<u64>,
    pub shrink: Option<u64>,
    pub grow_flip: Option<Flip>,
    pub shrink_flip: Option<Flip>,
    /// Layouts computed for the search.
    pub probes: u32,
}

impl Margins {
    /// The nearest flip within `reach` bytes of table growth or shrinkage whose tables do not
    /// reproduce themselves (the passes stop agreeing): `"grow"` or `"shrink"`, and the flip.
    pub fn breaking_flip_within(&self, reach: u64) -> Option<(&'static str, &Flip)> {
        [
            ("grow", self.grow, &self.grow_flip),
            ("shrink", self.shrink, &self.shrink_flip),
        ]
        .into_iter()
        .filter_map(|(direction, margin, flip)| {
            let flip = flip.as_ref().filter(|f| f.feeds_back)?;
            margin.filter(|m| *m < reach).map(|m| (m, direction, flip))
        })
        .min_by_key(|(m, _, _)| *m)
        .map(|(_, direction, flip)| (direction, flip))
    }

    /// The margins as one note about the script (`check` and `kbuild` print it).
    pub fn to_finding(&self) -> Finding {
        let fragile = [&self.grow_flip, &self.shrink_flip]
            .iter()
            .any(|f| f.as_ref().is_some_and(|f| f.feeds_back));
        Finding {
            code: "margin".into(),
            breaks_build: false,
            message: format!(
                "the kallsyms tables ({:#x} bytes) may {}, and {} ({} layout{} searched){}",
                self.tables_size,
                describe("grow", self.grow, self.grow_flip.as_ref()),
                describe("shrink", self.shrink, self.shrink_flip.as_ref()),
                self.probes,
                if self.probes == 1 { "" } else { "s" },
                if fragile {
                    "; a flip within reach makes consecutive passes disagree"
                } else {
                    ""
                }
            ),
            help: None,
            places: vec![Place {
                span: Span::new(0, 0),
                text: "this script".into(),
            }],
        }
    }
}

fn describe(direction: &str, margin: Option<u64>, flip: Option<&Flip>) -> String {
    match (margin, flip) {
        (Some(m), Some(f)) => format!(
            "{direction} {m} bytes (then {} flips the tables by {:+} bytes{})",
            f.cause,
            f.tables_delta,
            if f.feeds_back {
                " and the passes stop agreeing"
            } else {
                ""
            }
        ),
        _ => format!("{direction} with no flip at any coincidence the script analysis finds"),
    }
}

/// Replays the passes of the link `session` describes, then computes its margins using the
/// script's hazards: the final System.map locates the coincidences (when the script has none
/// nothing is laid out again), and the search reuses the passes' prepared link and cached
/// compressions.
pub fn simulate_with_margins(
    session: &LinkSession,
    opts: &PassOptions,
    hazards: &[Hazard],
) -> Result<(PassReport, Margins), PassError> {
    with_simulator(session, opts, |sim| {
        let report = sim.run()?;
        let margins = margins(sim, hazards, &report)?;
        Ok((report, margins))
    })
}

fn margins(
    sim: &Simulator<'_, '_>,
    hazards: &[Hazard],
    report: &PassReport,
) -> Result<Margins, PassError> {
    let map = &report.system_map;
    let coincidences: Vec<(String, u64, u64)> = hazards
        .iter()
        .filter(|h| h.variable)
        .filter_map(|h| match &h.site {
            Site::Coincidence { n, .. } => {
                let addr = address_of(map, h.symbols.first()?)?;
                Some((
                    format!("{} and the ALIGN({n:#x}) boundary", h.symbols.join(", ")),
                    addr,
                    *n,
                ))
            }
            _ => None,
        })
        .collect();
    if coincidences.is_empty() {
        let linked = report.passes.iter().rev().find_map(|p| p.tables.as_ref());
        return Ok(Margins {
            tables_size: linked.map_or(0, |t| t.rodata_size),
            grow: None,
            shrink: None,
            grow_flip: None,
            shrink_flip: None,
            probes: 0,
        });
    }
    let template = sim.tables_of_map(map, 0)?;
    // The two directions probe side by side: a probe is one layout, mostly on one thread.
    // Only the shrinking side's last step reads the growing side's result.
    let (grow, shrink) = rayon::join(
        || find_flip(sim, &template, &coincidences, true),
        || find_flip(sim, &template, &coincidences, false),
    );
    let grow = grow?;
    let grow_unchanged = [grow.unchanged_up_to];
    let (grow, shrink) = rayon::join(
        || settle(sim, &template, grow, &[]),
        || shrink.and_then(|found| settle(sim, &template, found, &grow_unchanged)),
    );
    let (grow, shrink) = (grow?, shrink?);
    Ok(Margins {
        tables_size: template.size,
        grow: grow.flip.as_ref().map(|(margin, _)| *margin),
        shrink: shrink.flip.as_ref().map(|(margin, _)| *margin),
        grow_flip: grow.flip.map(|(_, flip)| flip),
        shrink_flip: shrink.flip.map(|(_, flip)| flip),
        probes: grow.probes + shrink.probes,
    })
}

/// The outcome of the search in one direction.
struct Search {
    /// The margin and the first flip, if any coincidence flips.
    flip: Option<(u64, Flip)>,
    /// Layouts laid out (or found in the simulator's cache) for it.
    probes: u32,
}

/// Where a search first found the tables change size, before asking whether the change
/// settles.
struct Found<'c> {
    /// The change of the tables' size (signed) at which they first flip, the size they flip
    /// to, and the coincidence that flips.
    flip: Option<(i64, u64, &'c str)>,
    /// Layouts the search asked for so far.
    probes: u32,
    /// The farthest change of the tables' size (signed) up to which every size gives tables
    /// of the current size: probed, or between probes with no coincidence in between.
    unchanged_up_to: i64,
}

/// Whether `delta` lies between 0 and one of the `unchanged` bounds, on its side.
fn known_unchanged(delta: i64, unchanged: &[i64]) -> bool {
    unchanged
        .iter()
        .any(|&u| delta.signum() == u.signum() && delta.unsigned_abs() <= u.unsigned_abs())
}

/// The tables' size when they are `delta` bytes larger than `template`'s, counting the probe.
fn size_at(
    sim: &Simulator<'_, '_>,
    template: &RodataLayout,
    probes: &mut u32,
    delta: i64,
) -> Result<u64, PassError> {
    *probes += 1;
    let v = template.size.saturating_add_signed(delta);
    Ok(sim.tables_with_size(template, v)?.size)
}

/// Searches for the nearest flip when the tables grow (`grow`) or shrink from `template`'s size.
fn find_flip<'c>(
    sim: &Simulator<'_, '_>,
    template: &RodataLayout,
    coincidences: &'c [(String, u64, u64)],
    grow: bool,
) -> Result<Found<'c>, PassError> {
    let v0 = template.size;
    let mut probes = 0u32;
    let mut candidates: Vec<(i64, &str)> = coincidences
        .iter()
        .filter_map(|(cause, addr, n)| {
            let rem = addr % n;
            let d = if grow {
                if rem == 0 { 1 } else { (n - rem) as i64 }
            } else if rem == 0 {
                -1
            } else {
                -(rem as i64)
            };
            (grow || v0 as i64 + d >= 0).then_some((d, cause.as_str()))
        })
        .collect();
    candidates.sort_by_key(|(d, _)| d.unsigned_abs());
    let mut same = 0i64;
    for (d, cause) in candidates {
        let size = size_at(sim, template, &mut probes, d)?;
        if size == v0 {
            same = d;
            continue;
        }
        let (mut lo, mut hi, mut flipped) = (same, d, size);
        // The symbol usually moves with the tables byte for byte, so the flip is at the
        // candidate itself: one probe just short of it settles that.
        let short = d - d.signum();
        if short != same {
            let before = size_at(sim, template, &mut probes, short)?;
            if before == v0 {
                lo = short;
            } else {
                (hi, flipped) = (short, before);
            }
        }
        // Otherwise bisect between the last unchanged size and this one.
        while (hi - lo).abs() > 1 {
            let mid = lo + (hi - lo) / 2;
            let size = size_at(sim, template, &mut probes, mid)?;
            if size == v0 {
                lo = mid
            } else {
                (hi, flipped) = (mid, size)
            }
        }
        return Ok(Found {
            flip: Some((hi, flipped, cause)),
            probes,
            unchanged_up_to: hi - hi.signum(),
        });
    }
    Ok(Found {
        flip: None,
        probes,
        unchanged_up_to: same,
    })
}

/// Completes a search with whether its flip settles: tables of the flipped size that are
/// not a fixed point keep the passes changing. `unchanged` holds bounds found by other
/// searches (see [`Found::unchanged_up_to`]); where they already tell that size gives
/// unchanged tables, no layout is needed.
fn settle(
    sim: &Simulator<'_, '_>,
    template: &RodataLayout,
    found: Found<'_>,
    unchanged: &[i64],
) -> Result<Search, PassError> {
    let mut probes = found.probes;
    let Some((hi, flipped, cause)) = found.flip else {
        return Ok(Search { flip: None, probes });
    };
    let tables_delta = flipped as i64 - template.size as i64;
    let settles = !known_unchanged(tables_delta, &[unchanged, &[hi - hi.signum()]].concat())
        && size_at(sim, template, &mut probes, tables_delta)? == flipped;
    let flip = Flip {
        at: hi,
        tables_delta,
        cause: cause.to_string(),
        feeds_back: !settles,
    };
    Ok(Search {
        flip: Some((hi.unsigned_abs() - 1, flip)),
        probes,
    })
}

/// The address System.map gives `name` (on the first line naming it).
fn address_of(map: &[u8], name: &str) -> Option<u64> {
    let line_address = |line: &[u8]| {
        let text = std::str::from_utf8(line).ok()?;
        let mut f = text.split_whitespace();
        let (addr, _, sym) = (f.next()?, f.next()?, f.next()?);
        (sym == name)
            .then(|| u64::from_str_radix(addr, 16).ok())
            .flatten()
    };
    if name.is_empty() {
        return None;
    }
    // Only lines holding the name can name it: look at those, in order.
    memchr::memmem::find_iter(map, name.as_bytes()).find_map(|at| {
        let start = memchr::memrchr(b'\n', &map[..at]).map_or(0, |nl| nl + 1);
        let end = memchr::memchr(b'\n', &map[at..]).map_or(map.len(), |nl| at + nl);
        line_address(&map[start..end])
    })
}

#[cfg(test)]
mod tests {
    use super::{address_of, known_unchanged};

    #[test]
    fn address_of_reads_the_first_line_naming_the_symbol() {
        let map = b"0010 T _stext_alias\n0020 T _stext\n0030 t _stext\n";
        assert_eq!(address_of(map, "_stext"), Some(0x20));
        assert_eq!(address_of(map, "_stext_alias"), Some(0x10));
        assert_eq!(address_of(map, "stext"), None);
        assert_eq!(address_of(b"zz T a\n0040 T a", "a"), Some(0x40));
        assert_eq!(address_of(map, ""), None);
    }

    #[test]
    fn known_unchanged_needs_the_same_side_and_reach() {
        assert!(known_unchanged(19, &[3013]));
        assert!(known_unchanged(3013, &[3013]));
        assert!(!known_unchanged(3014, &[3013]));
        assert!(!known_unchanged(19, &[-1081]));
        assert!(known_unchanged(-19, &[3013, -1081]));
        assert!(!known_unchanged(19, &[]));
        // A search that probed nothing knows nothing, not even on its own side.
        assert!(!known_unchanged(1, &[0]));
    }
}
