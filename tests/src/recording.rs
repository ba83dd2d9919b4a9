//! Recordings written by peers, read only once they are complete.
//!
//! baresip's `sndfile` module records each call into `dump-…-dec.wav` (what it
//! decoded) and `dump-…-enc.wav` (what it sent) through libsndfile. The file exists from
//! the start of the call, but libsndfile writes the final sizes into the RIFF header
//! only when the call ends and the file is closed: until then the header says 0 frames,
//! and a reader sees an empty recording. On a loaded machine the close comes seconds
//! after the BYE, so a fixed wait is not enough.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The RIFF/WAVE header's view of a file: the RIFF chunk size (file length − 8 when
/// the writer has closed it) and the size of the `data` chunk in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavHeader {
    /// The RIFF chunk size (bytes 4..8), in bytes.
    pub riff_size: u32,
    /// The `data` chunk's size, in bytes.
    pub data_size: u32,
}

/// Reads the RIFF header of the WAV file at `path`; `None` if it is shorter than a
/// header or not RIFF/WAVE or has no `data` chunk yet.
#[must_use]
pub fn wav_header(path: &Path) -> Option<WavHeader> {
    let bytes = std::fs::read(path).ok()?;
    if bytes.len() < 12 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let le32 = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let riff_size = le32(4)?;
    let mut at = 12;
    while at + 8 <= bytes.len() {
        let size = le32(at + 4)?;
        if &bytes[at..at + 4] == b"data" {
            return Some(WavHeader {
                riff_size,
                data_size: size,
            });
        }
        // chunks are padded to an even length
        at += 8 + size as usize + (size as usize & 1);
    }
    None
}

/// Whether the WAV file at `path` was closed by its writer with some audio in it: its
/// `data` chunk is not empty and its RIFF size matches the file's length.
#[must_use]
pub fn is_complete_wav(path: &Path) -> bool {
    let Ok(len) = std::fs::metadata(path).map(|m| m.len()) else {
        return false;
    };
    wav_header(path).is_some_and(|h| h.data_size > 0 && u64::from(h.riff_size) + 8 == len)
}

/// Waits up to `timeout` for a file in `dir` whose name ends with `suffix` (for
/// baresip's decoded audio: `-dec.wav`) to be complete ([`is_complete_wav`]).
///
/// # Errors
/// A readable message if no such file appeared, or the one that did never got its final
/// header (the writer did not close it, or recorded no audio).
pub fn wait_complete_wav(dir: &Path, suffix: &str, timeout: Duration) -> Result<PathBuf, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(suffix));
        match found {
            Some(p) if is_complete_wav(&p) => return Ok(p),
            found if Instant::now() >= deadline => {
                return Err(match found {
                    Some(p) => format!(
                        "{} was not completed within {timeout:?} (header {:?}, {} bytes)",
                        p.display(),
                        wav_header(&p),
                        std::fs::metadata(&p).map_or(0, |m| m.len())
                    ),
                    None => format!(
                        "no *{suffix} recording in {} within {timeout:?}",
                        dir.display()
                    ),
                });
            }
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav(frames: u32, extra_data: usize, close: bool) -> Vec<u8> {
        let data_size = if close { frames * 2 } else { 0 };
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data_size).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes()); // PCM
        b.extend_from_slice(&1u16.to_le_bytes()); // mono
        b.extend_from_slice(&8000u32.to_le_bytes());
        b.extend_from_slice(&16000u32.to_le_bytes());
        b.extend_from_slice(&2u16.to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data_size.to_le_bytes());
        b.resize(b.len() + frames as usize * 2 + extra_data, 0x11);
        b
    }

    #[test]
    fn an_open_recording_is_not_complete_and_a_closed_one_is() {
        let dir = std::env::temp_dir().join(format!("jsg-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("dump-x-dec.wav");
        // as libsndfile leaves it while recording: header sizes 0, samples after it
        std::fs::write(&p, wav(800, 0, false)).expect("write");
        assert_eq!(
            wav_header(&p),
            Some(WavHeader {
                riff_size: 36,
                data_size: 0
            })
        );
        assert!(!is_complete_wav(&p));
        let err =
            wait_complete_wav(&dir, "-dec.wav", Duration::from_millis(0)).expect_err("open file");
        assert!(err.contains("was not completed"), "{err}");
        // closed: sizes written
        std::fs::write(&p, wav(800, 0, true)).expect("write");
        assert!(is_complete_wav(&p));
        assert_eq!(
            wait_complete_wav(&dir, "-dec.wav", Duration::from_millis(0)),
            Ok(p.clone())
        );
        // closed but with bytes after the data chunk the header does not count
        std::fs::write(&p, wav(800, 3, true)).expect("write");
        assert!(!is_complete_wav(&p));
        // not a WAV at all
        std::fs::write(&p, b"RIFX").expect("write");
        assert_eq!(wav_header(&p), None);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
