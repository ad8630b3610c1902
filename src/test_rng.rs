//! The randomized tests' number source: a xorshift generator, so a failing case is the same
//! on every run and machine.

/// 64-bit xorshift values from `seed` (which must not be 0).
pub(crate) fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}
