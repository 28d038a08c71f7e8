//! Placeholder until the static pickle walker lands (same API).
#![allow(missing_docs, dead_code)]

#[derive(Clone, Debug)]
pub struct PickleLimits {
    pub max_ops: u64,
    pub max_memo: usize,
    pub max_stack: usize,
    pub max_globals: usize,
    pub max_string: usize,
    pub max_input_bytes: u64,
}
impl Default for PickleLimits {
    fn default() -> Self {
        PickleLimits {
            max_ops: 50_000_000,
            max_memo: 1_000_000,
            max_stack: 1_000_000,
            max_globals: 10_000,
            max_string: 1024,
            max_input_bytes: 1 << 40,
        }
    }
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFormat {
    Pickle { protocol: u8 },
    Joblib,
    JoblibZlib,
    Onnx,
    Safetensors,
    Gguf,
    Unknown,
}
impl ModelFormat {
    pub fn name(&self) -> &'static str {
        "unknown"
    }
}
pub fn sniff(_head: &[u8]) -> ModelFormat {
    ModelFormat::Unknown
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PickleInfo {
    pub format: ModelFormat,
    pub protocol: u8,
    pub globals: Vec<String>,
    pub sklearn_version: Option<String>,
    pub arrays: u64,
}
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PickleError {
    #[error("not a pickle")]
    NotAPickle,
}
pub fn scan<R: std::io::Read>(_r: R, _limits: &PickleLimits) -> Result<PickleInfo, PickleError> {
    Err(PickleError::NotAPickle)
}
