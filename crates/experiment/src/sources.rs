//! The three splits at one image side as the stages read them: in memory or streamed.

use std::collections::BTreeMap;

use ganaug_data::{AnySource, ImageSource, Splits, StreamSplits};

/// The three splits at one side, as the stages read them: in memory or streamed.
#[derive(Clone, Copy)]
pub(crate) struct SplitSources<'a> {
    pub(crate) train: &'a dyn ImageSource,
    pub(crate) val: &'a dyn ImageSource,
    pub(crate) test: &'a dyn ImageSource,
}

impl<'a> SplitSources<'a> {
    /// The splits at `side`: streamed when there are streams, else in memory.
    pub(crate) fn of(
        splits: &'a BTreeMap<i64, Splits>,
        streams: Option<&'a BTreeMap<i64, StreamSplits>>,
        side: i64,
    ) -> Self {
        if let Some(s) = streams.and_then(|m| m.get(&side)) {
            return SplitSources {
                train: &s.train,
                val: &s.val,
                test: &s.test,
            };
        }
        let sp = &splits[&side];
        SplitSources {
            train: &sp.train,
            val: &sp.val,
            test: &sp.test,
        }
    }
}

/// The training split at `side`, owned and of its kind (streamed when there are streams, else
/// in memory), not copied: what a GAN stage trains on.
pub(crate) fn train_at(
    splits: &BTreeMap<i64, Splits>,
    streams: Option<&BTreeMap<i64, StreamSplits>>,
    side: i64,
) -> AnySource {
    match streams.and_then(|m| m.get(&side)) {
        Some(s) => s.train.shallow_clone().into(),
        None => splits[&side].train.shallow_clone().into(),
    }
}
