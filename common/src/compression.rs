//! LZ4 as Hookfleet stores it, in event records' data and attempt
//! entries' response excerpts: the uncompressed length (4 bytes,
//! little-endian), then one LZ4 block. Kept only when it saves an eighth
//! (docs/BENCHMARKS.md, "Memory per delivery", has the codecs measured).

/// Appends `data` compressed to `out` when that saves at least an eighth
/// of it, compressing in place (no buffer of its own); leaves `out` as it
/// was and answers `false` otherwise.
pub fn append_if_smaller(out: &mut Vec<u8>, data: &[u8]) -> bool {
    let Ok(len) = u32::try_from(data.len()) else {
        return false;
    };
    let start = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    let block_at = out.len();
    out.resize(
        block_at + lz4_flex::block::get_maximum_output_size(data.len()),
        0,
    );
    match lz4_flex::block::compress_into(data, &mut out[block_at..]) {
        Ok(block) if 4 + block <= data.len() - data.len() / 8 => {
            out.truncate(block_at + block);
            true
        }
        _ => {
            out.truncate(start);
            false
        }
    }
}

/// The room [`append_if_smaller`] needs for `len` bytes.
pub fn room_for(len: usize) -> usize {
    4 + lz4_flex::block::get_maximum_output_size(len)
}

/// What [`append_if_smaller`] appended, expanded; `None` when it is not
/// that, or claims to expand past `max_len` (a bound on what a damaged
/// value can make a reader allocate).
pub fn expand(stored: &[u8], max_len: usize) -> Option<Vec<u8>> {
    let len = u32::from_le_bytes(stored.get(..4)?.try_into().ok()?) as usize;
    if len > max_len {
        return None;
    }
    lz4_flex::block::decompress(&stored[4..], len).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_saves_an_eighth_is_kept() {
        let text = "the upstream server did not answer in time; ".repeat(20);
        let mut out = b"head|".to_vec();
        assert!(append_if_smaller(&mut out, text.as_bytes()));
        assert!(out.len() < 5 + text.len() / 4, "{}", out.len());
        assert_eq!(expand(&out[5..], 1 << 20).as_deref(), Some(text.as_bytes()));
        assert_eq!(expand(&out[5..], text.len() - 1), None, "over the bound");
        assert_eq!(expand(&out[5..out.len() - 3], 1 << 20), None, "cut short");
        assert_eq!(expand(b"\x01", 1 << 20), None);

        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let noise: Vec<u8> = (0..400)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                b'a' + (state % 26) as u8
            })
            .collect();
        let mut out = b"head|".to_vec();
        assert!(!append_if_smaller(&mut out, &noise));
        assert_eq!(out, b"head|", "left as it was");
        assert!(room_for(noise.len()) > noise.len());
    }
}
