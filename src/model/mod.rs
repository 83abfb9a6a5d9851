//! The QB-Heat model: Mobile-Former encoder, quarter masking, heat-equation predictor, decoder.

pub mod batch_norm;
pub mod decoder;
pub mod init;
pub mod layers;
pub mod mobile_former;
pub mod predictor;
pub mod qbheat;
