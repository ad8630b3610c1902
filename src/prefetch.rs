//! Prefetching for loops that visit data in an order other than the one it sits in memory
//! (symbol names in address order, a compression round's strings in list order): at 200k
//! symbols each visit would otherwise wait for a cache miss.

/// How many items ahead of the current one a loop prefetches.
pub const DISTANCE: usize = 16;

/// Asks the CPU to start loading the first bytes of `bytes`; does nothing else.
#[inline(always)]
pub fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            bytes.as_ptr().cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

/// `items` as they are, except that before each one the bytes `bytes_of` gives for the item
/// [`DISTANCE`] places further on are asked for: a loop over names scattered in memory.
pub fn ahead<I>(items: I, bytes_of: impl Fn(&I::Item) -> &[u8]) -> impl Iterator<Item = I::Item>
where
    I: Iterator + Clone,
{
    let mut further = items.clone().skip(DISTANCE);
    items.inspect(move |_| {
        if let Some(next) = further.next() {
            prefetch(bytes_of(&next));
        }
    })
}
