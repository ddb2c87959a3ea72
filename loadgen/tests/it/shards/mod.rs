//! Generator shards (issue 14): the schedule's partition ([`partition`]), the exact merge of
//! shard results ([`merge`]), real shard processes against polymetrie merged by `loadgen merge`
//! ([`processes`]), and a local campaign whose steps run on N generators ([`campaign`]).

mod campaign;
mod merge;
mod partition;
mod processes;
mod scenario;
