//! SPDY/3 name/value header blocks: the block layout and its zlib compression.
//!
//! Each direction of a connection is one zlib stream primed with [`DICTIONARY`]; every header
//! block is a sync-flushed piece of it, so the compressor and decompressor live as long as the
//! connection and must see the blocks in order.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{Error, dictionary::DICTIONARY};

/// Largest decompressed header block accepted (a guard against zlib bombs).
const MAX_BLOCK: usize = 64 * 1024;

/// Header pairs in the order they came; names are lowercase on the wire.
pub type Headers = Vec<(String, String)>;

/// Serialises a header block (before compression).
fn encode_block(headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    let count = u32::try_from(headers.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for (name, value) in headers {
        for part in [name.to_ascii_lowercase().as_bytes(), value.as_bytes()] {
            let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

/// Parses a decompressed header block.
fn decode_block(block: &[u8]) -> Result<Headers, Error> {
    let mut at = 0usize;
    let word = |at: &mut usize| -> Result<usize, Error> {
        let bytes = block
            .get(*at..*at + 4)
            .ok_or(Error::BadHeaderBlock("truncated length"))?;
        *at += 4;
        let mut four = [0u8; 4];
        four.copy_from_slice(bytes);
        usize::try_from(u32::from_be_bytes(four)).map_err(|_| Error::BadHeaderBlock("length"))
    };
    let count = word(&mut at)?;
    let mut headers = Vec::with_capacity(count.min(64));
    for _ in 0..count {
        let mut pair = [String::new(), String::new()];
        for part in &mut pair {
            let len = word(&mut at)?;
            let bytes = block
                .get(at..at + len)
                .ok_or(Error::BadHeaderBlock("truncated string"))?;
            at += len;
            *part = String::from_utf8(bytes.to_vec())
                .map_err(|_| Error::BadHeaderBlock("not UTF-8"))?;
        }
        let [name, value] = pair;
        headers.push((name, value));
    }
    Ok(headers)
}

/// The compressing half of one connection direction.
pub struct Compressor(Compress);

impl Compressor {
    /// A compressor primed with the SPDY dictionary.
    pub fn new() -> Result<Self, Error> {
        let mut compress = Compress::new(Compression::default(), true);
        compress
            .set_dictionary(DICTIONARY)
            .map_err(|_| Error::Zlib("cannot set the compression dictionary"))?;
        Ok(Self(compress))
    }

    /// Compresses one header block, sync-flushed so the peer can decode it alone.
    pub fn compress(&mut self, headers: &[(String, String)]) -> Result<Vec<u8>, Error> {
        let input = encode_block(headers);
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut consumed = 0usize;
        loop {
            out.reserve(256);
            let before_in = self.0.total_in();
            self.0
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|_| Error::Zlib("compression failed"))?;
            consumed += usize::try_from(self.0.total_in() - before_in).unwrap_or(0);
            // Done once all input is in and zlib left spare room (the flush is complete).
            if consumed >= input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// The decompressing half of one connection direction.
pub struct Decompressor {
    inner: Decompress,
}

impl Decompressor {
    /// A decompressor that takes the SPDY dictionary when the stream asks for it.
    pub fn new() -> Self {
        Self {
            inner: Decompress::new(true),
        }
    }

    /// Decompresses one header block.
    pub fn decompress(&mut self, mut input: &[u8]) -> Result<Headers, Error> {
        let mut out: Vec<u8> = Vec::with_capacity(256);
        loop {
            if out.len() >= MAX_BLOCK {
                return Err(Error::BadHeaderBlock("header block too large"));
            }
            out.reserve(1024);
            let before_in = self.inner.total_in();
            let before_out = out.len();
            match self
                .inner
                .decompress_vec(input, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(error) if error.needs_dictionary().is_some() => {
                    self.inner
                        .set_dictionary(DICTIONARY)
                        .map_err(|_| Error::Zlib("the peer used another dictionary"))?;
                }
                Err(_) => return Err(Error::Zlib("decompression failed")),
            }
            let used = usize::try_from(self.inner.total_in() - before_in).unwrap_or(0);
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && out.len() == before_out && input.is_empty() {
                break;
            }
        }
        decode_block(&out)
    }
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Headers {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn blocks_round_trip_through_one_stream_each_way() {
        let mut c = Compressor::new().expect("compressor");
        let mut d = Decompressor::new();
        let first = pairs(&[("streamtype", "error"), ("port", "")]);
        let second = pairs(&[("streamtype", "stdout")]);
        let a = c.compress(&first).expect("compress");
        let b = c.compress(&second).expect("compress");
        // The stream carries the dictionary's checksum: FDICT is set in the zlib header.
        assert_eq!(a[1] & 0x20, 0x20);
        assert_eq!(d.decompress(&a).expect("first"), first);
        assert_eq!(d.decompress(&b).expect("second"), second);
    }

    #[test]
    fn empty_and_large_blocks() {
        let mut c = Compressor::new().expect("compressor");
        let mut d = Decompressor::new();
        assert_eq!(
            d.decompress(&c.compress(&[]).expect("c")).expect("d"),
            Vec::new()
        );
        let big = pairs(&[("x-long", &"v".repeat(20_000))]);
        assert_eq!(d.decompress(&c.compress(&big).expect("c")).expect("d"), big);
    }

    #[test]
    fn a_truncated_block_is_an_error() {
        assert!(decode_block(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
    }
}
