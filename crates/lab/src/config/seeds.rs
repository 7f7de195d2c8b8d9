//! Which seed each random stream of a run starts from: the initial weights, and each epoch's data order
//! (its shuffle, dropout and distortions), set apart or both from `trainer.seed`.

use super::TrainerConfig;

impl TrainerConfig {
    /// The seed of the initial weights.
    pub fn init_seed(&self) -> u64 {
        self.init_seed.unwrap_or(self.seed)
    }

    /// The seed epoch `epoch` (1-based; 0 before training) draws its order, dropout and distortions from:
    /// a hash of the order seed and the epoch. Not `seed + epoch`: then seed k's epoch 2 would be seed
    /// k + 1's epoch 1, and runs of neighbouring seeds would share shifted shuffles.
    pub fn epoch_seed(&self, epoch: usize) -> i64 {
        let order = self.order_seed.unwrap_or(self.seed);
        // LibTorch's CPU generator keeps 32 bits of a seed: keep the hash's low 32.
        (splitmix64((order << 32) ^ epoch as u64) & 0xffff_ffff) as i64
    }
}

/// SplitMix64's finaliser (Steele et al. 2014): a bijection of 64-bit words whose outputs for neighbouring
/// inputs look independent.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::collections::HashSet;

    #[test]
    fn neighbouring_seeds_never_share_an_epoch_stream() {
        let mut seen = HashSet::new();
        let mut t = Config::default().trainer;
        for seed in 1..=50 {
            t.seed = seed;
            for epoch in 0..=100 {
                assert!(
                    seen.insert(t.epoch_seed(epoch)),
                    "seed {seed} epoch {epoch}"
                );
            }
        }
    }

    #[test]
    fn the_hash_is_splitmix64_and_keeps_32_bits() {
        // SplitMix64's first output from state 0 (Steele et al.; Vigna's reference splitmix64.c).
        assert_eq!(super::splitmix64(0), 0xe220_a839_7b1d_cdaf);
        let mut t = Config::default().trainer;
        t.seed = 0xffff_ffff;
        let seeds: Vec<i64> = (0..1000).map(|e| t.epoch_seed(e)).collect();
        assert!(
            seeds.iter().all(|&s| (0..1 << 32).contains(&s)),
            "{seeds:?}"
        );
        // Seed 0, epoch 0 is the hash of 0 cut to its low 32 bits.
        t.seed = 0;
        assert_eq!(t.epoch_seed(0), 0x7b1d_cdaf);
        assert_eq!(t.epoch_seed(1), (super::splitmix64(1) & 0xffff_ffff) as i64);
    }

    #[test]
    fn the_streams_can_be_set_apart() {
        let mut t = Config::default().trainer;
        t.seed = 7;
        let (init, order) = (t.init_seed(), t.epoch_seed(3));
        t.init_seed = Some(8);
        assert_eq!((t.init_seed(), t.epoch_seed(3)), (8, order));
        t.init_seed = None;
        t.order_seed = Some(8);
        assert_eq!(t.init_seed(), init);
        assert_ne!(t.epoch_seed(3), order);
        t.seed = 9;
        assert_eq!(t.epoch_seed(3), {
            let mut u = t.clone();
            u.seed = 1;
            u.epoch_seed(3)
        });
    }
}
