//! Where the repository reads its blocks from.

use std::borrow::Cow;
use std::collections::HashMap;

use cid::Cid;

use crate::{RepoError, Result};

/// Read access to content-addressed blocks. Storage engines implement this; the repo code only
/// reads through it and hands new blocks back to the caller to persist.
pub trait BlockSource {
    /// The bytes of `cid`, or `None` if this source does not hold it. In-memory sources lend
    /// their bytes; databases hand out a copy.
    fn get_block(&self, cid: &Cid) -> Result<Option<Cow<'_, [u8]>>>;

    /// Like [`BlockSource::get_block`], but a missing block is an error.
    fn require_block(&self, cid: &Cid) -> Result<Cow<'_, [u8]>> {
        self.get_block(cid)?.ok_or(RepoError::missing(cid))
    }
}

impl<T: BlockSource + ?Sized> BlockSource for &T {
    fn get_block(&self, cid: &Cid) -> Result<Option<Cow<'_, [u8]>>> {
        (**self).get_block(cid)
    }
}

pub use pds_ipld::{CidHasher, CidKey};

/// Blocks held in memory: tests, CAR imports, and the blocks of a commit being built.
#[derive(Debug, Default, Clone)]
pub struct MemoryBlocks {
    blocks: HashMap<CidKey, Vec<u8>, CidHasher>,
}

impl MemoryBlocks {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn insert(&mut self, cid: Cid, bytes: Vec<u8>) {
        self.blocks.insert(CidKey(cid), bytes);
    }
    pub fn contains(&self, cid: &Cid) -> bool {
        self.blocks.contains_key(&CidKey(*cid))
    }
    pub fn get(&self, cid: &Cid) -> Option<&Vec<u8>> {
        self.blocks.get(&CidKey(*cid))
    }
    pub fn remove(&mut self, cid: &Cid) -> Option<Vec<u8>> {
        self.blocks.remove(&CidKey(*cid))
    }
    pub fn len(&self) -> usize {
        self.blocks.len()
    }
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Cid, &Vec<u8>)> {
        self.blocks.iter().map(|(k, v)| (&k.0, v))
    }
    pub fn into_inner(self) -> impl Iterator<Item = (Cid, Vec<u8>)> {
        self.blocks.into_iter().map(|(k, v)| (k.0, v))
    }
}

impl Extend<(Cid, Vec<u8>)> for MemoryBlocks {
    fn extend<I: IntoIterator<Item = (Cid, Vec<u8>)>>(&mut self, iter: I) {
        self.blocks
            .extend(iter.into_iter().map(|(c, b)| (CidKey(c), b)))
    }
}

impl FromIterator<(Cid, Vec<u8>)> for MemoryBlocks {
    fn from_iter<I: IntoIterator<Item = (Cid, Vec<u8>)>>(iter: I) -> Self {
        Self {
            blocks: iter.into_iter().map(|(c, b)| (CidKey(c), b)).collect(),
        }
    }
}

impl BlockSource for MemoryBlocks {
    fn get_block(&self, cid: &Cid) -> Result<Option<Cow<'_, [u8]>>> {
        Ok(self
            .blocks
            .get(&CidKey(*cid))
            .map(|b| Cow::Borrowed(b.as_slice())))
    }
}

/// New blocks layered over a base source: reads see `top` first. Used while a commit's new
/// blocks exist only in memory.
pub struct Overlay<'a, B: BlockSource + ?Sized> {
    pub top: &'a MemoryBlocks,
    pub base: &'a B,
}

impl<B: BlockSource + ?Sized> BlockSource for Overlay<'_, B> {
    fn get_block(&self, cid: &Cid) -> Result<Option<Cow<'_, [u8]>>> {
        match self.top.get(cid) {
            Some(bytes) => Ok(Some(Cow::Borrowed(bytes.as_slice()))),
            None => self.base.get_block(cid),
        }
    }
}
