//! Byte-level mutations, driven by the seeded generator.
//!
//! One call stacks 1 to 8 edits on a copy of the parent: bit flips, random
//! or boundary bytes, deletions, duplications, dictionary tokens (the
//! syntax the parser cares about) and splices from a second pool entry.
//! Inputs never exceed the size limit, as the daemon's body limit would
//! refuse them before any parser saw them.

use verdict_judges::splitmix64::SplitMix64;

fn below(rng: &mut SplitMix64, n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (rng.next_u64() % n as u64) as usize
    }
}

/// Bytes that sit on parser boundaries.
const INTERESTING: &[u8] = b"\0\x01\x7f\x80\xff\"\\{}[]:,'`\n\r\t -+.0123456789eE";

/// A mutant of `parent`, at most `max_len` bytes.
pub fn mutate(
    rng: &mut SplitMix64,
    parent: &[u8],
    other: &[u8],
    dictionary: &[&str],
    max_len: usize,
) -> Vec<u8> {
    let mut data = parent.to_vec();
    let edits = 1 + below(rng, 8);
    for _ in 0..edits {
        let at = below(rng, data.len() + 1);
        match below(rng, 9) {
            0 if !data.is_empty() => {
                let i = below(rng, data.len());
                data[i] ^= 1 << below(rng, 8);
            }
            1 if !data.is_empty() => {
                let i = below(rng, data.len());
                data[i] = rng.next_u64() as u8;
            }
            2 => data.insert(at, INTERESTING[below(rng, INTERESTING.len())]),
            3 if !data.is_empty() => {
                let len = 1 + below(rng, 16.min(data.len()));
                let start = below(rng, data.len() - len + 1);
                data.drain(start..start + len);
            }
            4 if !data.is_empty() => {
                // Duplicate a range: repetition, nesting, long values.
                let len = 1 + below(rng, 64.min(data.len()));
                let start = below(rng, data.len() - len + 1);
                let copy = data[start..start + len].to_vec();
                let times = 1 + below(rng, 16);
                for _ in 0..times {
                    data.splice(at..at, copy.iter().copied());
                }
            }
            5 | 6 if !dictionary.is_empty() => {
                let token = dictionary[below(rng, dictionary.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            7 if !other.is_empty() => {
                // Splice: a piece of another input at a point of this one.
                let start = below(rng, other.len());
                let len = 1 + below(rng, (other.len() - start).min(256));
                data.splice(at..at, other[start..start + len].iter().copied());
            }
            8 if !data.is_empty() => {
                data.truncate(at.max(1));
            }
            _ => data.insert(at, rng.next_u64() as u8),
        }
        data.truncate(max_len);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutants() {
        let run = |seed| {
            let mut rng = SplitMix64::new(seed);
            (0..100)
                .map(|_| mutate(&mut rng, b"{\"a\":1}", b"[2]", &["{{"], 64))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        assert!(run(7).iter().all(|m| m.len() <= 64));
    }
}
