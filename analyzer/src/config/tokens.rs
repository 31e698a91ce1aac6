//! The API's accepted tokens, read from the token file named in the config
//! (`api.token_file`) and checked at load like every other setting; the
//! API's authentication layer (`api::auth`) holds them.
//!
//! Only SHA-256 digests are kept, and a presented token is compared with
//! every digest in constant time (`subtle`).

use std::fmt;
use std::io::Read;
use std::path::Path;
use subtle::ConstantTimeEq;

/// Shortest token accepted: a guessable token is no authentication.
pub const MIN_TOKEN_LEN: usize = 16;

/// Largest token file read (a few tokens are a few hundred bytes).
const MAX_TOKEN_FILE_BYTES: u64 = 64 * 1024;

/// The accepted tokens, as SHA-256 digests.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Digests are not secrets, but there is nothing to learn from them.
        write!(f, "Tokens({} accepted)", self.digests.len())
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

impl Tokens {
    /// Parses a token file: one token per line; blank lines and lines
    /// starting with `#` are skipped. Errors never quote a token.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut digests = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let token = line.trim();
            if token.is_empty() || token.starts_with('#') {
                continue;
            }
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "token on line {} is shorter than {MIN_TOKEN_LEN} characters",
                    i + 1
                ));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "token on line {} has characters other than printable ASCII",
                    i + 1
                ));
            }
            digests.push(digest(token.as_bytes()));
        }
        if digests.is_empty() {
            return Err("holds no token".into());
        }
        Ok(Tokens { digests })
    }

    /// Reads and parses a token file (at most 64 KiB).
    pub fn read(path: &Path) -> Result<Tokens, String> {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
        let mut text = String::new();
        file.take(MAX_TOKEN_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
        if text.len() as u64 > MAX_TOKEN_FILE_BYTES {
            return Err(format!(
                "token file {} is larger than {MAX_TOKEN_FILE_BYTES} bytes",
                path.display()
            ));
        }
        Tokens::parse(&text).map_err(|e| format!("token file {}: {e}", path.display()))
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the tokens. Every digest is compared,
    /// each in constant time, whatever matches.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let presented = digest(presented);
        let mut found = subtle::Choice::from(0);
        for d in &self.digests {
            found |= d.ct_eq(&presented);
        }
        found.into()
    }
}
