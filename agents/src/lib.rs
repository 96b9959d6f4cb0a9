
pub mod logging;
pub mod runconfig;
pub mod adam;
pub mod checkpoint;
pub mod device;
pub mod losses;
pub mod policy;
pub mod algos;
pub mod rollout;
pub mod scorer;
pub mod train;
pub mod preferences;
pub mod reward_model;
pub mod experiment;
pub mod compare;
pub mod mlp;
pub mod stats;
