//! Order-statistic multisets for [`RunningCell`](super::RunningCell): the i-th smallest value
//! without a scan, and inserts and removes whose cost does not grow with the multiset.
//!
//! - [`Fenwick`]: prefix counts over slots, and the slot holding a given rank, in O(log slots).
//! - [`IntCounts`]: small integers (elapsed days, visits) as counts per value, so a cell of a
//!   million observations with a few thousand distinct values holds a few thousand counters.
//! - [`SortedBlocks`]: arbitrary ordered values (costs, whole observations) as a list of
//!   sorted blocks of bounded size, so an insert moves at most one block's worth of values.
//!
//! Counts are u32 to halve the memory of the dense counters: a cell would need 2^32
//! observations to overflow them, far beyond what fits in memory (each observation is also
//! held as 16 bytes in the cell's [`SortedBlocks`]).

/// A binary indexed tree of counts: slot i (0-based) is node i + 1, which holds the sum of the
/// slots (i + 1 - lowbit(i + 1), i + 1], 1-based.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fenwick {
    tree: Vec<u32>,
}

fn lowbit(i: usize) -> usize {
    i & i.wrapping_neg()
}

impl Fenwick {
    /// Builds the tree over `counts` in O(slots), cheaper than one add per slot: rebuilding
    /// is how [`SortedBlocks`] follows a block split or merge.
    pub(crate) fn from_counts(counts: impl IntoIterator<Item = u32>) -> Self {
        let mut tree: Vec<u32> = counts.into_iter().collect();
        let len = tree.len();
        for node in 1..=len {
            let parent = node + lowbit(node);
            if parent <= len {
                tree[parent - 1] += tree[node - 1];
            }
        }
        Self { tree }
    }

    pub(crate) fn len(&self) -> usize {
        self.tree.len()
    }

    pub(crate) fn add(&mut self, slot: usize, delta: u32) {
        let mut node = slot + 1;
        while node <= self.tree.len() {
            self.tree[node - 1] += delta;
            node += lowbit(node);
        }
    }

    /// The caller guarantees the slot holds at least `delta`.
    pub(crate) fn sub(&mut self, slot: usize, delta: u32) {
        let mut node = slot + 1;
        while node <= self.tree.len() {
            self.tree[node - 1] -= delta;
            node += lowbit(node);
        }
    }

    /// The sum of slots [0, end).
    pub(crate) fn prefix(&self, end: usize) -> u32 {
        let mut node = end.min(self.tree.len());
        let mut sum = 0;
        while node > 0 {
            sum += self.tree[node - 1];
            node -= lowbit(node);
        }
        sum
    }

    pub(crate) fn count(&self, slot: usize) -> u32 {
        self.prefix(slot + 1) - self.prefix(slot)
    }

    /// The slot holding the unit of rank `rank` (0-based, counting units slot by slot) and the
    /// rank's offset within that slot; `None` when the tree holds no more than `rank` units.
    /// One root-to-leaf descent: O(log slots).
    pub(crate) fn find(&self, rank: u32) -> Option<(usize, u32)> {
        let len = self.tree.len();
        if len == 0 {
            return None;
        }
        // The largest pos with prefix(pos) <= rank, built bit by bit from the top.
        let (mut pos, mut rest) = (0, rank);
        let mut step = 1usize << len.ilog2();
        while step > 0 {
            let next = pos + step;
            if next <= len && self.tree[next - 1] <= rest {
                pos = next;
                rest -= self.tree[next - 1];
            }
            step >>= 1;
        }
        (pos < len).then_some((pos, rest))
    }

    /// Grows a tree of 0 or a power of two slots to `new_len` (a larger power of two) in
    /// O(new_len) without rebuilding: every new node covers only new, empty slots except the
    /// powers of two, whose range starts at slot 0 and so holds the old total.
    pub(crate) fn grow_pow2(&mut self, new_len: usize) {
        let old = self.tree.len();
        debug_assert!(old == 0 || old.is_power_of_two());
        debug_assert!(new_len.is_power_of_two() && new_len >= old);
        let total = old.checked_sub(1).map_or(0, |root| self.tree[root]);
        self.tree.resize(new_len, 0);
        if old > 0 {
            let mut node = old * 2;
            while node <= new_len {
                self.tree[node - 1] = total;
                node *= 2;
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.tree.capacity() * size_of::<u32>()
    }
}

/// Values below this are counted in a dense tree (4096 x 4 bytes at most, reached only by a
/// cell with some elapsed time over ~16 years of working days); larger ones, which no real
/// observation has, go to a sorted list so that any u32 stays correct without a tree of 2^32.
const DENSE_LIMIT: u32 = 4096;

/// The smallest dense tree, so that a new cell does not reallocate on its first few values.
const DENSE_MIN: usize = 16;

/// A multiset of u32 as counts per value: a dense [`Fenwick`] over [0, 2^j) that doubles to
/// hold the largest value seen below [`DENSE_LIMIT`], and a [`SortedBlocks`] above it. Ranks
/// run through the dense values first, then the sparse ones, which are all larger.
#[derive(Debug, Clone, Default)]
pub(crate) struct IntCounts {
    dense: Fenwick,
    dense_len: u32,
    sparse: SortedBlocks<u32>,
}

impl IntCounts {
    pub(crate) fn insert(&mut self, value: u32) {
        if value < DENSE_LIMIT {
            let slot = value as usize;
            let needed = (slot + 1).next_power_of_two().max(DENSE_MIN);
            if needed > self.dense.len() {
                self.dense.grow_pow2(needed);
            }
            self.dense.add(slot, 1);
            self.dense_len += 1;
        } else {
            self.sparse.insert(value);
        }
    }

    /// Removes one `value`; false (and nothing changed) if none is held.
    pub(crate) fn remove(&mut self, value: u32) -> bool {
        if value < DENSE_LIMIT {
            let slot = value as usize;
            if slot >= self.dense.len() || self.dense.count(slot) == 0 {
                return false;
            }
            self.dense.sub(slot, 1);
            self.dense_len -= 1;
            true
        } else {
            self.sparse.remove(value)
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.dense_len as usize + self.sparse.len()
    }

    /// Whether `value` is held at least once.
    pub(crate) fn contains(&self, value: u32) -> bool {
        if value < DENSE_LIMIT {
            let slot = value as usize;
            slot < self.dense.len() && self.dense.count(slot) > 0
        } else {
            self.sparse.contains(value)
        }
    }

    /// The value of rank `rank` (0-based, ascending): O(log DENSE_LIMIT) or O(log n).
    pub(crate) fn kth(&self, rank: usize) -> Option<u32> {
        let dense_len = self.dense_len as usize;
        if rank < dense_len {
            let (slot, _) = self.dense.find(u32::try_from(rank).ok()?)?;
            u32::try_from(slot).ok()
        } else {
            self.sparse.kth(rank - dense_len)
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.dense.heap_bytes() + self.sparse.heap_bytes()
    }
}

/// Values gathered in any order, to become a [`SortedBlocks`] at once ([`Unsorted::sorted`]).
/// They are kept in pieces of [`PIECE`] values, each allocated once (only the first grows,
/// by a quarter, so that a small cell holds little), and the sorted values are copied back
/// into the same pieces, which become the blocks. Gathering them in one growing vector and
/// cutting new blocks out of it left the allocator a quarter more memory than the values
/// after a load (measured: 221 MB resident against 175 MB after loading 1,000,000
/// observations; docs/benchmarks.md, issue 15).
#[derive(Debug, Clone)]
pub(crate) struct Unsorted<T> {
    pieces: Vec<Vec<T>>,
    len: usize,
}

/// Values per piece of an [`Unsorted`], and so per block of the [`SortedBlocks`] it becomes:
/// half [`SPLIT_AT`], as a block is just after a split.
const PIECE: usize = SPLIT_AT / 2;

impl<T> Default for Unsorted<T> {
    fn default() -> Self {
        Self {
            pieces: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Ord + Copy> Unsorted<T> {
    pub(crate) fn push(&mut self, value: T) {
        match self.pieces.last_mut() {
            Some(piece) if piece.len() < PIECE => {
                if piece.len() == piece.capacity() {
                    piece.reserve_exact((piece.len() / 4).clamp(4, PIECE - piece.len()));
                }
                piece.push(value);
            }
            last => {
                let capacity = if last.is_some() { PIECE } else { 4 };
                let mut piece = Vec::with_capacity(capacity);
                piece.push(value);
                self.pieces.push(piece);
            }
        }
        self.len += 1;
    }

    /// The values as a [`SortedBlocks`]: sorted in one scratch vector, then copied back into
    /// the pieces, every one full but the last two, which share the rest so that neither
    /// holds fewer than [`MERGE_BELOW`] values.
    pub(crate) fn sorted(self) -> SortedBlocks<T> {
        let Unsorted { mut pieces, len } = self;
        if let [only] = pieces.as_mut_slice() {
            only.sort_unstable();
        } else if pieces.len() > 1 {
            let mut all: Vec<T> = Vec::with_capacity(len);
            for piece in &pieces {
                all.extend_from_slice(piece);
            }
            all.sort_unstable();
            // Every piece but the last is full (PIECE values), the last holds the rest.
            let last = len - PIECE * (pieces.len() - 1);
            let short = MERGE_BELOW.saturating_sub(last);
            let mut rest = all.as_slice();
            let count = pieces.len();
            for (i, piece) in pieces.iter_mut().enumerate() {
                let size = match count - 1 - i {
                    0 => last + short,
                    1 => PIECE - short,
                    _ => PIECE,
                };
                let (these, after) = rest.split_at(size);
                piece.clear();
                piece.extend_from_slice(these);
                rest = after;
            }
        }
        let mut built = SortedBlocks {
            blocks: pieces,
            index: Fenwick::default(),
            len,
            capacity: 0,
        };
        built.reindex();
        built
    }
}

/// A block is split in two once it holds this many values: an insert or remove moves at most
/// this many values (16 KB of u64, 32 KB of u128), whatever the multiset holds.
const SPLIT_AT: usize = 2048;

/// A block below this is merged into a neighbour, so that removals cannot leave many nearly
/// empty blocks (each with its allocation) behind. Every block but a lone one stays at or
/// above it, so a multiset of n values has at most n / MERGE_BELOW + 1 blocks.
const MERGE_BELOW: usize = SPLIT_AT / 4;

/// An order-statistic multiset: sorted blocks, ordered among themselves, with a [`Fenwick`]
/// over their lengths. Finding a value's block is a binary search on the blocks' last
/// values, a rank's block is a descent of the tree: O(log n) each, plus O([`SPLIT_AT`]) to
/// shift values inside one block. A split or merge (once per ~[`MERGE_BELOW`] updates at
/// most) rebuilds the tree in O(n / [`MERGE_BELOW`]).
///
/// Values equal under `Ord` are interchangeable: a remove takes any one of them.
#[derive(Debug, Clone)]
pub(crate) struct SortedBlocks<T> {
    /// Never holds an empty block.
    blocks: Vec<Vec<T>>,
    index: Fenwick,
    len: usize,
    /// The sum of the blocks' capacities, in values, for [`SortedBlocks::heap_bytes`] in O(1).
    capacity: usize,
}

impl<T> Default for SortedBlocks<T> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            index: Fenwick::default(),
            len: 0,
            capacity: 0,
        }
    }
}

impl<T: Ord + Copy> SortedBlocks<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The values, to be sorted again with more (a cell that held some when its builder
    /// started: none does at a start-up).
    pub(crate) fn into_unsorted(self) -> Unsorted<T> {
        let mut values = Unsorted::default();
        for block in self.blocks {
            for value in block {
                values.push(value);
            }
        }
        values
    }

    /// The first block whose last value is >= `value`: the only block that can hold it, and
    /// where it belongs (`blocks.len()` when it is above every block).
    fn block_for(&self, value: &T) -> usize {
        self.blocks
            .partition_point(|block| block.last().is_some_and(|last| last < value))
    }

    pub(crate) fn insert(&mut self, value: T) {
        let b = self
            .block_for(&value)
            .min(self.blocks.len().saturating_sub(1));
        let Some(block) = self.blocks.get_mut(b) else {
            self.blocks.push(vec![value]);
            self.len += 1;
            self.reindex();
            return;
        };
        let before = block.capacity();
        if block.len() == block.capacity() {
            // Grown by a quarter, not doubled: most cells are one block, and a doubled block
            // is half empty just after it grows (measured: 32 bytes held per 16-byte value
            // with 1.1's seven cells per observation; docs/benchmarks.md, issue 14).
            block.reserve_exact((block.len() / 4).max(4));
        }
        let at = block.partition_point(|v| *v < value);
        block.insert(at, value);
        self.capacity = self.capacity - before + block.capacity();
        let block_len = block.len();
        self.index.add(b, 1);
        self.len += 1;
        if block_len >= SPLIT_AT {
            self.split(b);
            self.reindex();
        }
    }

    /// Whether a value equal to `value` is held.
    pub(crate) fn contains(&self, value: T) -> bool {
        self.blocks
            .get(self.block_for(&value))
            .is_some_and(|block| {
                let at = block.partition_point(|v| *v < value);
                block.get(at) == Some(&value)
            })
    }

    /// Removes one value equal to `value`; false (and nothing changed) if none is held.
    pub(crate) fn remove(&mut self, value: T) -> bool {
        let b = self.block_for(&value);
        let Some(block) = self.blocks.get_mut(b) else {
            return false;
        };
        let at = block.partition_point(|v| *v < value);
        if block.get(at) != Some(&value) {
            return false;
        }
        block.remove(at);
        let block_len = block.len();
        self.index.sub(b, 1);
        self.len -= 1;
        if block_len == 0 {
            self.blocks.remove(b);
            self.reindex();
        } else if block_len < MERGE_BELOW && self.blocks.len() > 1 {
            self.merge(b);
            self.reindex();
        }
        true
    }

    /// The value of rank `rank` (0-based, ascending).
    pub(crate) fn kth(&self, rank: usize) -> Option<T> {
        if rank >= self.len {
            return None;
        }
        let (b, offset) = self.index.find(u32::try_from(rank).ok()?)?;
        self.blocks.get(b)?.get(offset as usize).copied()
    }

    /// Splits block `b` into two halves; the caller reindexes.
    fn split(&mut self, b: usize) {
        let Some(block) = self.blocks.get_mut(b) else {
            return;
        };
        let upper = block.split_off(block.len() / 2);
        // The lower half keeps the full block's allocation otherwise.
        block.shrink_to_fit();
        self.blocks.insert(b + 1, upper);
    }

    /// Merges block `b` with its next neighbour (its previous one if it is the last), then
    /// splits the result if it reached [`SPLIT_AT`]; the caller reindexes.
    fn merge(&mut self, b: usize) {
        let lower = if b + 1 < self.blocks.len() {
            b
        } else {
            b.saturating_sub(1)
        };
        if lower + 1 >= self.blocks.len() {
            return;
        }
        let mut upper = self.blocks.remove(lower + 1);
        let Some(block) = self.blocks.get_mut(lower) else {
            return;
        };
        block.append(&mut upper);
        if block.len() >= SPLIT_AT {
            self.split(lower);
        }
    }

    /// Rebuilds the length tree and the capacity sum after the blocks changed shape.
    fn reindex(&mut self) {
        self.index = Fenwick::from_counts(
            self.blocks
                .iter()
                .map(|block| u32::try_from(block.len()).unwrap_or(u32::MAX)),
        );
        self.capacity = self.blocks.iter().map(Vec::capacity).sum();
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * size_of::<Vec<T>>()
            + self.capacity * size_of::<T>()
            + self.index.heap_bytes()
    }
}

#[cfg(test)]
mod tests;
